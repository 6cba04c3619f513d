package ops

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernelOp is an op whose output shape is fixed when its node is built and whose kernel
// writes every element of a contiguous output tensor.
type kernelOp interface {
	gorgonia.Op
	base() *opBase
	outputShape() tensor.Shape
	run(out *tensor.Dense, inputs []gorgonia.Value) error
}

// doKernel runs op into its output: its reusable buffer, or under a buffer plan a tensor
// from the graph's pool. It then gives back the pooled inputs.
func doKernel(op kernelOp, buf *outputBuffer, inputs []gorgonia.Value) (gorgonia.Value, error) {
	dt, err := checkInputs(op, inputs)
	if err != nil {
		return nil, err
	}
	var out *tensor.Dense
	if buf.refs > 0 {
		out = op.base().pool.acquire(dt, op.outputShape(), buf.refs)
	} else {
		out = buf.get(dt, op.outputShape())
	}
	if err := op.run(out, inputs); err != nil {
		return nil, err
	}
	op.base().releaseInputs(inputs)
	return out, nil
}

// preallocKernel runs op into prealloc, which must have the output's dtype and shape. In a
// graph with a buffer plan, prealloc may be a dead value whose memory the pool hands to
// another op later, so the op runs into its own output instead: gorgonia keeps whichever
// value the op returns.
func preallocKernel(op kernelOp, buf *outputBuffer, prealloc gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	if op.base().pool != nil {
		return doKernel(op, buf, inputs)
	}
	return intoKernel(op, prealloc, inputs)
}

// intoKernel runs op into target, which must have the output's dtype and shape.
func intoKernel(op kernelOp, target gorgonia.Value, inputs []gorgonia.Value) (gorgonia.Value, error) {
	dt, err := checkInputs(op, inputs)
	if err != nil {
		return nil, err
	}
	out, err := preallocTarget(op.String(), target, dt, op.outputShape())
	if err != nil {
		return nil, err
	}
	if err := op.run(out, inputs); err != nil {
		return nil, err
	}
	op.base().releaseInputs(inputs)
	return out, nil
}

func checkInputs(op gorgonia.Op, inputs []gorgonia.Value) (tensor.Dtype, error) {
	if len(inputs) != op.Arity() {
		return tensor.Dtype{}, fmt.Errorf("%w: %v: got %d inputs, want %d", ErrInvalidArgument, op, len(inputs), op.Arity())
	}
	dt, err := dtypeOf(op.String(), inputs)
	if err != nil {
		return dt, err
	}
	for i, v := range inputs {
		if v.Dtype() != dt {
			return dt, fmt.Errorf("%w: %v: input %d is %v but input 0 is %v", ErrInvalidDtype, op, i, v.Dtype(), dt)
		}
	}
	return dt, nil
}

// inputData returns the data of inputs[i], checked against shape.
func inputData[T float](op gorgonia.Op, inputs []gorgonia.Value, i int, shape tensor.Shape) ([]T, error) {
	return valueData[T](op.String(), i, inputs[i], shape)
}

// outputData returns the elements of an output tensor from outputBuffer or preallocTarget.
func outputData[T float](out *tensor.Dense) []T {
	return out.Data().([]T)[:out.Shape().TotalSize()]
}
