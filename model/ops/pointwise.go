package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Tanh applies the hyperbolic tangent element-wise to x [N, C, H, W], computed in float64 and
// rounded once. Unlike gorgonia.Tanh, its forward and backward ops reuse their output memory
// on every run.
func Tanh(x *gorgonia.Node) (*gorgonia.Node, error) {
	return pointwise("Tanh", x, pointwiseTanh, 0)
}

// Activate applies act element-wise to x [N, C, H, W], as InstanceNorm does after
// normalising; the zero Activation returns x itself. Like Tanh, it reuses its output memory.
func Activate(x *gorgonia.Node, act Activation) (*gorgonia.Node, error) {
	if err := act.validate(); err != nil {
		return nil, fmt.Errorf("Activate: %w", err)
	}
	if act.Kind == ActivationNone {
		return x, nil
	}
	return pointwise("Activate", x, pointwiseSlope, act.negativeSlope())
}

// pointwiseKind selects the function of a pointwiseOp.
type pointwiseKind int

const (
	pointwiseTanh  pointwiseKind = iota // tanh
	pointwiseSlope                      // v for v > 0, slope·v otherwise
)

func pointwise(name string, x *gorgonia.Node, kind pointwiseKind, slope float64) (*gorgonia.Node, error) {
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
	return gorgonia.ApplyOp(newPointwiseOp(xs, kind, slope, false), x)
}

// pointwiseOp is y = f(x) (forward: input x) or its gradient dx = dy·f'(x) (backward: inputs
// y, the forward output, and dy). Both functions have a derivative that y determines:
// 1 − y² for tanh, and 1 or slope by the sign of y, which is the sign of x, for the slope
// function.
type pointwiseOp struct {
	opBase
	shape    tensor.Shape
	kind     pointwiseKind
	slope    float64
	backward bool
	out      outputBuffer
}

func newPointwiseOp(shape tensor.Shape, kind pointwiseKind, slope float64, backward bool) *pointwiseOp {
	name := "Tanh"
	if kind == pointwiseSlope {
		name = fmt.Sprintf("Slope(%g)", slope)
	}
	if backward {
		name += "Grad"
	}
	return &pointwiseOp{opBase: opBase{desc: fmt.Sprintf("%s{%v}", name, shape)}, shape: shape.Clone(), kind: kind, slope: slope, backward: backward}
}

func (op *pointwiseOp) Arity() int {
	if op.backward {
		return 2
	}
	return 1
}

func (op *pointwiseOp) Type() hm.Type {
	if op.backward {
		return fnType(4, 4, 4)
	}
	return fnType(4, 4)
}

func (op *pointwiseOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}

func (op *pointwiseOp) outputShape() tensor.Shape { return op.shape }

func (op *pointwiseOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *pointwiseOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *pointwiseOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runPointwise[float32](op, out, inputs)
	}
	return runPointwise[float64](op, out, inputs)
}

func runPointwise[T float](op *pointwiseOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	x, err := inputData[T](op, inputs, 0, op.shape)
	if err != nil {
		return err
	}
	dst := outputData[T](out)
	slope := T(op.slope)
	if !op.backward {
		op.team.parallelFor(len(x), 16*len(x), func(lo, hi int) {
			for i, v := range x[lo:hi] {
				if op.kind == pointwiseTanh {
					dst[lo+i] = T(math.Tanh(float64(v)))
				} else {
					dst[lo+i] = max(v, 0) + slope*min(v, 0)
				}
			}
		})
		return nil
	}
	dy, err := inputData[T](op, inputs, 1, op.shape)
	if err != nil {
		return err
	}
	y := x // the backward op's first input is the forward output
	dy = dy[:len(y)]
	for i, v := range y {
		switch {
		case op.kind == pointwiseTanh:
			dst[i] = dy[i] * (1 - v*v)
		case v > 0:
			dst[i] = dy[i]
		default:
			dst[i] = dy[i] * slope
		}
	}
	return nil
}

func (op *pointwiseOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

func (op *pointwiseOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.backward {
		return nil, fmt.Errorf("%w: %v has no gradient", ErrInvalidArgument, op)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want 1", ErrInvalidArgument, op, len(inputs))
	}
	dx, err := gorgonia.ApplyOp(newPointwiseOp(op.shape, op.kind, op.slope, true), output, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx}, nil
}
