package ops

import (
	"fmt"

	"gorgonia.org/tensor"
)

// GradSink holds the weight and bias gradients of a convolution weight that several ops of
// one graph share. Gorgonia gives a node used n times n gradient nodes and sums them with
// Add nodes, each of which allocates a tensor on every run. The gradient ops of convolutions
// built with a sink instead add their gradient into the sink's tensors in place, and each
// such gradient node's value is the sink tensor itself.
//
// To use one, give every use of the weight its own node (all wrapping the same tensor), so
// that gorgonia has nothing to sum, and build each convolution with WithGradSink. Then take
// the gradient with respect to all those nodes and run them all. The caller zeroes the sink
// (Zero) before each run. After the run it contains the sum of the gradients of every use,
// added in the order the machine ran the ops.
type GradSink struct {
	weight, bias *tensor.Dense
	uses         int // convolutions built with the sink; numbers their gradient ops apart
}

// NewGradSink returns a sink over weight and bias (nil for a convolution without bias),
// which must be contiguous float32 or float64 tensors of one dtype.
func NewGradSink(weight, bias *tensor.Dense) (*GradSink, error) {
	if weight == nil {
		return nil, fmt.Errorf("%w: gradient sink: weight must not be nil", ErrInvalidArgument)
	}
	dt := weight.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("%w: gradient sink: weight is %v, want float32 or float64", ErrInvalidDtype, dt)
	}
	for _, t := range []*tensor.Dense{weight, bias} {
		if t == nil {
			continue
		}
		if t.Dtype() != dt {
			return nil, fmt.Errorf("%w: gradient sink: bias is %v but weight is %v", ErrInvalidDtype, t.Dtype(), dt)
		}
		if t.RequiresIterator() {
			return nil, fmt.Errorf("%w: gradient sink: tensor %v is not contiguous", ErrInvalidArgument, t.Shape())
		}
	}
	return &GradSink{weight: weight, bias: bias}, nil
}

// Zero clears both gradients.
func (s *GradSink) Zero() {
	for _, t := range []*tensor.Dense{s.weight, s.bias} {
		if t != nil {
			t.Zero()
		}
	}
}

// check reports whether the sink fits a convolution with weight shape ws and, if hasBias, a
// bias of bs channels, in dtype dt.
func (s *GradSink) check(op string, dt tensor.Dtype, ws tensor.Shape, hasBias bool, bs int) error {
	if s.weight.Dtype() != dt {
		return fmt.Errorf("%w: %s: gradient sink is %v but the convolution is %v", ErrInvalidDtype, op, s.weight.Dtype(), dt)
	}
	if !s.weight.Shape().Eq(ws) {
		return fmt.Errorf("%w: %s: gradient sink weight has shape %v but the convolution's weight %v", ErrInvalidShape, op, s.weight.Shape(), ws)
	}
	switch {
	case hasBias && s.bias == nil:
		return fmt.Errorf("%w: %s: the convolution has a bias but its gradient sink has none", ErrInvalidArgument, op)
	case !hasBias && s.bias != nil:
		return fmt.Errorf("%w: %s: the gradient sink has a bias but the convolution has none", ErrInvalidArgument, op)
	case hasBias && !s.bias.Shape().Eq(tensor.Shape{bs}):
		return fmt.Errorf("%w: %s: gradient sink bias has shape %v but the convolution has %d output channels", ErrInvalidShape, op, s.bias.Shape(), bs)
	}
	return nil
}

// Option changes how a convolution op is built.
type Option func(*convOptions)

type convOptions struct {
	sink *GradSink
}

// WithGradSink makes the convolution's weight and bias gradient ops add into sink.
func WithGradSink(sink *GradSink) Option {
	return func(o *convOptions) { o.sink = sink }
}

func buildOptions(opts []Option) convOptions {
	var o convOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// sinkUse is a gradient op's place in a sink: nil sink for an op with its own output.
type sinkUse struct {
	sink *GradSink
	use  int
}

// newUse registers one more convolution with the sink, or returns the zero sinkUse.
func newUse(s *GradSink) sinkUse {
	if s == nil {
		return sinkUse{}
	}
	s.uses++
	return sinkUse{sink: s, use: s.uses}
}

func (u sinkUse) String() string {
	if u.sink == nil {
		return ""
	}
	return fmt.Sprintf(" sink use %d", u.use)
}
