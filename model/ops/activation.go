package ops

import "fmt"

// ActivationKind selects the activation that InstanceNorm applies to its normalised output.
type ActivationKind int

const (
	// ActivationNone leaves the normalised value as is.
	ActivationNone ActivationKind = iota
	// ActivationReLU is max(0, v).
	ActivationReLU
	// ActivationLeakyReLU is v for v > 0 and Slope·v otherwise.
	ActivationLeakyReLU
)

// Activation is an element-wise activation fused into an op. The zero value is no activation.
type Activation struct {
	Kind ActivationKind
	// Slope is the factor for negative inputs of ActivationLeakyReLU (0.2 in CycleGAN's
	// discriminator); the other kinds ignore it.
	Slope float64
}

// ReLU returns the ReLU activation.
func ReLU() Activation { return Activation{Kind: ActivationReLU} }

// LeakyReLU returns the leaky ReLU activation with the given negative slope.
func LeakyReLU(slope float64) Activation {
	return Activation{Kind: ActivationLeakyReLU, Slope: slope}
}

// negativeSlope returns the factor applied to non-positive values: 1 for no activation, 0 for
// ReLU and Slope for leaky ReLU.
func (a Activation) negativeSlope() float64 {
	switch a.Kind {
	case ActivationReLU:
		return 0
	case ActivationLeakyReLU:
		return a.Slope
	default:
		return 1
	}
}

func (a Activation) validate() error {
	switch a.Kind {
	case ActivationNone, ActivationReLU:
		return nil
	case ActivationLeakyReLU:
		if a.Slope < 0 || a.Slope != a.Slope {
			return fmt.Errorf("%w: leaky ReLU slope %v, want a number ≥ 0", ErrInvalidArgument, a.Slope)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown activation kind %d", ErrInvalidArgument, int(a.Kind))
	}
}

func (a Activation) String() string {
	switch a.Kind {
	case ActivationNone:
		return "none"
	case ActivationReLU:
		return "relu"
	case ActivationLeakyReLU:
		return fmt.Sprintf("leakyrelu(%g)", a.Slope)
	default:
		return fmt.Sprintf("activation(%d)", int(a.Kind))
	}
}
