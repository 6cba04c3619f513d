package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReflectionPad2d pads the last two dimensions of x [N, C, H, W] by pad on every side with the
// mirror image of the input, without repeating the edge, as PyTorch's ReflectionPad2d does.
// pad must be smaller than H and W.
func ReflectionPad2d(x *gorgonia.Node, pad int) (*gorgonia.Node, error) {
	const name = "ReflectionPad2d"
	if x == nil {
		return nil, fmt.Errorf("%w: %s: input must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	if pad < 0 || pad >= xs[2] || pad >= xs[3] {
		return nil, fmt.Errorf("%w: %s: padding %d for input %v, want 0 ≤ padding < %d", ErrInvalidArgument, name, pad, xs, min(xs[2], xs[3]))
	}
	return gorgonia.ApplyOp(newPadOp(xs, pad, false), x)
}

// padOp pads by reflection (forward) or sums a padded gradient back onto the input (backward).
type padOp struct {
	opBase
	in       tensor.Shape // the unpadded shape
	pad      int
	backward bool
	out      outputBuffer
}

func newPadOp(in tensor.Shape, pad int, backward bool) *padOp {
	name := "ReflectionPad2d"
	if backward {
		name = "ReflectionPad2dGrad"
	}
	return &padOp{opBase: opBase{desc: fmt.Sprintf("%s{in=%v pad=%d}", name, in, pad)}, in: in.Clone(), pad: pad, backward: backward}
}

func (op *padOp) padded() tensor.Shape {
	return tensor.Shape{op.in[0], op.in[1], op.in[2] + 2*op.pad, op.in[3] + 2*op.pad}
}

func (op *padOp) Arity() int    { return 1 }
func (op *padOp) Type() hm.Type { return fnType(4, 4) }
func (op *padOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.outputShape(), nil
}

func (op *padOp) outputShape() tensor.Shape {
	if op.backward {
		return op.in.Clone()
	}
	return op.padded()
}

func (op *padOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *padOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *padOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runPad[float32](op, out, inputs)
	}
	return runPad[float64](op, out, inputs)
}

func runPad[T float](op *padOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	inShape := op.padded()
	if !op.backward {
		inShape = op.in
	}
	src, err := inputData[T](op, inputs, 0, inShape)
	if err != nil {
		return err
	}
	dst := outputData[T](out)
	planes, h, w, p := op.in[0]*op.in[1], op.in[2], op.in[3], op.pad
	ph, pw := h+2*p, w+2*p
	op.team.parallelFor(planes, planes*ph*pw, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			small := c * h * w
			big := c * ph * pw
			if op.backward {
				reflectPadBackward(dst[small:small+h*w], src[big:big+ph*pw], h, w, p)
			} else {
				reflectPadForward(src[small:small+h*w], dst[big:big+ph*pw], h, w, p)
			}
		}
	})
	return nil
}

// reflectPadForward writes the padded plane dst [(h+2p)×(w+2p)] from src [h×w].
func reflectPadForward[T float](src, dst []T, h, w, p int) {
	pw := w + 2*p
	for oy := 0; oy < h+2*p; oy++ {
		row := src[reflectIndex(oy-p, h)*w:][:w]
		out := dst[oy*pw : (oy+1)*pw]
		for ox := 0; ox < p; ox++ {
			out[ox] = row[p-ox]
			out[pw-1-ox] = row[w-1-p+ox]
		}
		copy(out[p:p+w], row)
	}
}

// reflectPadBackward sums the padded gradient src [(h+2p)×(w+2p)] onto dst [h×w].
func reflectPadBackward[T float](dst, src []T, h, w, p int) {
	pw := w + 2*p
	clear(dst)
	for oy := 0; oy < h+2*p; oy++ {
		row := dst[reflectIndex(oy-p, h)*w:][:w]
		in := src[oy*pw : (oy+1)*pw]
		for ox := 0; ox < p; ox++ {
			row[p-ox] += in[ox]
			row[w-1-p+ox] += in[pw-1-ox]
		}
		for i, v := range in[p : p+w] {
			row[i] += v
		}
	}
}

func (op *padOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

func (op *padOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.backward {
		return nil, fmt.Errorf("%w: %v has no gradient", ErrInvalidArgument, op)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want 1", ErrInvalidArgument, op, len(inputs))
	}
	dx, err := gorgonia.ApplyOp(newPadOp(op.in, op.pad, true), grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx}, nil
}
