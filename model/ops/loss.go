package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MeanSquaredError returns mean((x − target)²) over every element of x [N, C, H, W] as a
// scalar node: the least-squares GAN loss of logits x against an all-target label.
func MeanSquaredError(x *gorgonia.Node, target float64) (*gorgonia.Node, error) {
	return newLoss("MeanSquaredError", lossSquared, target, x, nil)
}

// MeanAbsoluteError returns mean|a − b| over every element of a and b [N, C, H, W] as a scalar
// node.
func MeanAbsoluteError(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: MeanAbsoluteError: inputs must not be nil", ErrInvalidArgument)
	}
	return newLoss("MeanAbsoluteError", lossAbsolute, 0, a, b)
}

// BinaryCrossEntropyWithLogits returns the mean binary cross-entropy of logits x [N, C, H, W]
// against an all-real (target 1) or all-fake (target 0) label as a scalar node:
// mean softplus(−x) for target 1 and mean softplus(x) for target 0, where
// softplus(z) = max(z, 0) + log(1 + exp(−|z|)) does not overflow.
func BinaryCrossEntropyWithLogits(x *gorgonia.Node, real bool) (*gorgonia.Node, error) {
	sign := 1.0
	if real {
		sign = -1
	}
	return newLoss("BinaryCrossEntropyWithLogits", lossSoftplus, sign, x, nil)
}

// lossKind selects the per-element loss of a lossOp.
type lossKind int

const (
	lossSquared  lossKind = iota // (x − param)²
	lossAbsolute                 // |a − b|
	lossSoftplus                 // softplus(param·x), param ±1
)

func newLoss(name string, kind lossKind, param float64, x, b *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: %s: inputs must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x, b); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(param) || math.IsInf(param, 0) {
		return nil, fmt.Errorf("%w: %s: target %v, want a finite number", ErrInvalidArgument, name, param)
	}
	op := &lossOp{opBase: opBase{desc: fmt.Sprintf("%s{%v %g}", name, xs, param)}, kind: kind, param: param, shape: xs.Clone()}
	if b == nil {
		return gorgonia.ApplyOp(op, x)
	}
	if !b.Shape().Eq(xs) {
		return nil, fmt.Errorf("%w: %s: inputs have shapes %v and %v", ErrInvalidShape, name, xs, b.Shape())
	}
	return gorgonia.ApplyOp(op, x, b)
}

// lossOp reduces its input (or, for lossAbsolute, the difference of its two inputs) to the
// mean of a per-element loss, summed in float64; for float32 inputs a sum beyond the float32
// range becomes infinite. Its output is a gorgonia scalar.
type lossOp struct {
	opBase
	kind  lossKind
	param float64
	shape tensor.Shape
}

func (op *lossOp) Arity() int {
	if op.kind == lossAbsolute {
		return 2
	}
	return 1
}

func (op *lossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := &gorgonia.TensorType{Dims: 4, Of: a}
	if op.kind == lossAbsolute {
		return hm.NewFnType(t, t, a)
	}
	return hm.NewFnType(t, a)
}

func (op *lossOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *lossOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	dt, err := checkInputs(op, inputs)
	if err != nil {
		return nil, err
	}
	var sum float64
	if dt == tensor.Float32 {
		sum, err = lossSum[float32](op, inputs)
	} else {
		sum, err = lossSum[float64](op, inputs)
	}
	if err != nil {
		return nil, err
	}
	op.releaseInputs(inputs)
	if dt == tensor.Float32 && math.Abs(sum) > math.MaxFloat32 {
		// A float32 sum, as PyTorch computes it, would have overflowed to infinity; the
		// mean keeps that, so that an exploding loss is reported as one.
		sum = math.Copysign(math.Inf(1), sum)
	}
	mean := sum / float64(op.shape.TotalSize())
	if dt == tensor.Float32 {
		return gorgonia.NewF32(float32(mean)), nil
	}
	return gorgonia.NewF64(mean), nil
}

func lossSum[T float](op *lossOp, inputs []gorgonia.Value) (float64, error) {
	x, err := inputData[T](op, inputs, 0, op.shape)
	if err != nil {
		return 0, err
	}
	var b []T
	if op.kind == lossAbsolute {
		if b, err = inputData[T](op, inputs, 1, op.shape); err != nil {
			return 0, err
		}
	}
	var sum float64
	for i, v := range x {
		e := float64(v)
		switch op.kind {
		case lossSquared:
			e -= op.param
			e *= e
		case lossAbsolute:
			e = math.Abs(e - float64(b[i]))
		case lossSoftplus:
			z := op.param * e
			e = max(z, 0) + math.Log1p(math.Exp(-math.Abs(z)))
		}
		sum += e
	}
	return sum, nil
}

func (op *lossOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

func (op *lossOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want %d", ErrInvalidArgument, op, len(inputs), op.Arity())
	}
	var grads gorgonia.Nodes
	for i := range inputs {
		g, err := gorgonia.ApplyOp(newLossGradOp(op, i == 1), append(inputs[:len(inputs):len(inputs)], grad)...)
		if err != nil {
			return nil, err
		}
		grads = append(grads, g)
	}
	return grads, nil
}

// lossGradOp is the gradient of a lossOp with respect to its first input, or with negate, its
// second (for lossAbsolute, the negated first): inputs are the loss's inputs and the scalar
// gradient of its output.
type lossGradOp struct {
	opBase
	loss   *lossOp
	negate bool
	out    outputBuffer
}

func newLossGradOp(loss *lossOp, negate bool) *lossGradOp {
	input := "first"
	if negate {
		input = "second"
	}
	return &lossGradOp{opBase: opBase{desc: fmt.Sprintf("%sGrad{%s}", loss.desc, input)}, loss: loss, negate: negate}
}

func (op *lossGradOp) Arity() int { return op.loss.Arity() + 1 }

func (op *lossGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t := &gorgonia.TensorType{Dims: 4, Of: a}
	if op.loss.kind == lossAbsolute {
		return hm.NewFnType(t, t, a, t)
	}
	return hm.NewFnType(t, a, t)
}

func (op *lossGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.loss.shape.Clone(), nil
}

func (op *lossGradOp) outputShape() tensor.Shape { return op.loss.shape }

func (op *lossGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *lossGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *lossGradOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runLossGrad[float32](op, out, inputs)
	}
	return runLossGrad[float64](op, out, inputs)
}

func runLossGrad[T float](op *lossGradOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	l := op.loss
	x, err := inputData[T](op, inputs, 0, l.shape)
	if err != nil {
		return err
	}
	var b []T
	if l.kind == lossAbsolute {
		if b, err = inputData[T](op, inputs, 1, l.shape); err != nil {
			return err
		}
	}
	g, err := scalarValue(op, inputs[len(inputs)-1])
	if err != nil {
		return err
	}

	// scale is the output gradient over the element count, the factor of the mean.
	scale := T(g / float64(l.shape.TotalSize()))
	if op.negate {
		scale = -scale
	}

	dx := outputData[T](out)
	param := T(l.param)
	for i, v := range x {
		switch l.kind {
		case lossSquared:
			dx[i] = scale * 2 * (v - param)
		case lossAbsolute:
			var s T
			switch d := v - b[i]; {
			case d > 0:
				s = 1
			case d < 0:
				s = -1
			}
			dx[i] = scale * s
		case lossSoftplus:
			// d softplus(p·v)/dv = p·σ(p·v).
			z := float64(param * v)
			dx[i] = scale * param * T(1/(1+math.Exp(-z)))
		}
	}
	return nil
}

// scalarValue returns the number held by a scalar value or a one-element tensor.
func scalarValue(op gorgonia.Op, v gorgonia.Value) (float64, error) {
	switch d := v.Data().(type) {
	case float32:
		return float64(d), nil
	case float64:
		return d, nil
	case []float32:
		if len(d) == 1 {
			return float64(d[0]), nil
		}
	case []float64:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("%w: %v: output gradient %v is not a scalar", ErrInvalidShape, op, v)
}
