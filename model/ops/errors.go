package ops

import (
	"errors"
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var (
	// ErrInvalidShape is returned when an input has the wrong rank, mismatched channels, or
	// the op's output would have a zero or negative size.
	ErrInvalidShape = errors.New("ops: invalid shape")
	// ErrInvalidDtype is returned when inputs are not all float32 or all float64.
	ErrInvalidDtype = errors.New("ops: invalid dtype")
	// ErrInvalidArgument is returned for an invalid stride, padding, epsilon or activation.
	ErrInvalidArgument = errors.New("ops: invalid argument")
)

// checkDtypes returns the common dtype of nodes, which must be float32 or float64. A nil
// node is skipped so that an optional bias can be passed as is.
func checkDtypes(op string, nodes ...*gorgonia.Node) (tensor.Dtype, error) {
	var dt tensor.Dtype
	for i, n := range nodes {
		if n == nil {
			continue
		}
		d, err := nodeDtype(n)
		if err != nil {
			return dt, fmt.Errorf("%s: input %d (%s): %w", op, i, n.Name(), err)
		}
		if d != tensor.Float32 && d != tensor.Float64 {
			return dt, fmt.Errorf("%w: %s: input %d (%s) is %v, want float32 or float64", ErrInvalidDtype, op, i, n.Name(), d)
		}
		if dt == (tensor.Dtype{}) {
			dt = d
		} else if d != dt {
			return dt, fmt.Errorf("%w: %s: input %d (%s) is %v but input 0 is %v", ErrInvalidDtype, op, i, n.Name(), d, dt)
		}
	}
	return dt, nil
}

func nodeDtype(n *gorgonia.Node) (dt tensor.Dtype, err error) {
	defer func() {
		// Node.Dtype panics for a node whose type is not a tensor or scalar type.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: no element type (%v)", ErrInvalidDtype, r)
		}
	}()
	return n.Dtype(), nil
}

// shape4 returns n's shape, which must have rank 4.
func shape4(op, what string, n *gorgonia.Node) (tensor.Shape, error) {
	s := n.Shape()
	if len(s) != 4 {
		return nil, fmt.Errorf("%w: %s: %s %s has shape %v, want rank 4", ErrInvalidShape, op, what, n.Name(), s)
	}
	for _, d := range s {
		if d <= 0 {
			return nil, fmt.Errorf("%w: %s: %s %s has shape %v with a non-positive size", ErrInvalidShape, op, what, n.Name(), s)
		}
	}
	return s, nil
}
