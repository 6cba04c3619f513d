package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ResidualAdd returns x + f, the output of a residual block whose input x also feeds first,
// the block's first convolution (a node that Conv2d or Conv2dReflect built with x as input).
//
// Gorgonia sums the gradients that reach a node from several uses with an Add node, which
// allocates a new tensor on every run. Here the sum's gradient does not flow to x through
// the addition: first's input-gradient op adds it to the gradient it computes, which is then
// x's whole gradient. This relies on gorgonia.Grad differentiating the sum node before first,
// which its reverse topological order guarantees because first's output leads to f.
func ResidualAdd(x, f, first *gorgonia.Node) (*gorgonia.Node, error) {
	const name = "ResidualAdd"
	if x == nil || f == nil || first == nil {
		return nil, fmt.Errorf("%w: %s: inputs must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x, f); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	if !f.Shape().Eq(xs) {
		return nil, fmt.Errorf("%w: %s: block output %s has shape %v, the input %v", ErrInvalidShape, name, f.Name(), f.Shape(), xs)
	}

	conv, ok := first.Op().(*conv2dOp)
	if !ok {
		return nil, fmt.Errorf("%w: %s: first %s is %v, want a convolution of this package", ErrInvalidArgument, name, first.Name(), first.Op())
	}
	if g := first.Graph(); g == nil || g != x.Graph() {
		return nil, fmt.Errorf("%w: %s: first %s is not in x's graph", ErrInvalidArgument, name, first.Name())
	}
	children := first.Graph().From(first.ID())
	if !children.Next() || children.Node().ID() != x.ID() {
		return nil, fmt.Errorf("%w: %s: first %s does not take %s as its input", ErrInvalidArgument, name, first.Name(), x.Name())
	}
	if conv.residual != nil {
		return nil, fmt.Errorf("%w: %s: first %s already starts a residual block", ErrInvalidArgument, name, first.Name())
	}

	y, err := gorgonia.ApplyOp(newResidualOp(xs), x, f)
	if err != nil {
		return nil, err
	}
	conv.residual = y
	return y, nil
}

// residualGrad returns the gradient node of the residual sum this convolution starts, once
// gorgonia.Grad has made it, or nil.
func (op *conv2dOp) residualGrad() *gorgonia.Node {
	if op.residual == nil {
		return nil
	}
	return op.residual.Deriv()
}

// residualOp adds its two inputs. Its gradient goes to the second input only; the first's
// comes through the block's first convolution (see ResidualAdd).
type residualOp struct {
	opBase
	shape tensor.Shape
	out   outputBuffer
}

func newResidualOp(shape tensor.Shape) *residualOp {
	return &residualOp{opBase: opBase{desc: fmt.Sprintf("ResidualAdd{%v}", shape)}, shape: shape.Clone()}
}

func (op *residualOp) Arity() int    { return 2 }
func (op *residualOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op *residualOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *residualOp) outputShape() tensor.Shape { return op.shape }

func (op *residualOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *residualOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *residualOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runResidual[float32](op, out, inputs)
	}
	return runResidual[float64](op, out, inputs)
}

func runResidual[T float](op *residualOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	x, err := inputData[T](op, inputs, 0, op.shape)
	if err != nil {
		return err
	}
	f, err := inputData[T](op, inputs, 1, op.shape)
	if err != nil {
		return err
	}
	y := outputData[T](out)
	copy(y, x)
	addInto(op.team, y, f)
	return nil
}

func (op *residualOp) DiffWRT(int) []bool { return []bool{false, true} }

func (op *residualOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want 2", ErrInvalidArgument, op, len(inputs))
	}
	return gorgonia.Nodes{nil, grad}, nil
}

// addInto adds src to dst element by element, in parts on several goroutines when large.
func addInto[T float](t *teamHandle, dst, src []T) {
	src = src[:len(dst)]
	t.parallelFor(len(dst), len(dst), func(lo, hi int) {
		d, s := dst[lo:hi], src[lo:hi]
		for i := range d {
			d[i] += s[i]
		}
	})
}
