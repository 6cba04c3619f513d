package ops

import (
	"fmt"

	"gorgonia.org/gorgonia"
)

// ConvTranspose2d applies a 2-D transposed convolution as PyTorch's ConvTranspose2d does:
// x [N, Cin, H, W], w [Cin, Cout, K, K] (PyTorch's layout), b [Cout] or nil; the output is
// [N, Cout, Ho, Wo] with Ho = (H − 1)·stride − 2·pad + K + outputPad. outputPad must be
// smaller than stride.
func ConvTranspose2d(x, w, b *gorgonia.Node, stride, pad, outputPad int, opts ...Option) (*gorgonia.Node, error) {
	const name = "ConvTranspose2d"
	if x == nil || w == nil {
		return nil, fmt.Errorf("%w: %s: input and weight must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x, w, b); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	ws, err := shape4(name, "weight", w)
	if err != nil {
		return nil, err
	}
	if ws[0] != xs[1] || ws[2] != ws[3] {
		return nil, fmt.Errorf("%w: %s: weight %v does not fit input %v, want [%d, Cout, K, K]", ErrInvalidShape, name, ws, xs, xs[1])
	}
	if err := checkBias(name, b, ws[1]); err != nil {
		return nil, err
	}
	sink, err := optionSink(name, opts, w, ws, b != nil, ws[1])
	if err != nil {
		return nil, err
	}
	if stride < 1 || pad < 0 || outputPad < 0 || outputPad >= stride {
		return nil, fmt.Errorf("%w: %s: stride %d, padding %d, output padding %d; want stride ≥ 1, padding ≥ 0 and 0 ≤ output padding < stride",
			ErrInvalidArgument, name, stride, pad, outputPad)
	}
	k := ws[2]
	ho := (xs[2]-1)*stride - 2*pad + k + outputPad
	wo := (xs[3]-1)*stride - 2*pad + k + outputPad
	if ho < 1 || wo < 1 {
		return nil, fmt.Errorf("%w: %s: input %v with weight %v, stride %d, padding %d gives an empty %d×%d output",
			ErrInvalidShape, name, xs, ws, stride, pad, ho, wo)
	}
	// The transposed convolution is the adjoint of the convolution from [N, Cout, Ho, Wo] to
	// x's shape with the same weight, stride and padding. outputPad < stride makes that
	// convolution's output exactly H×W.
	g, err := newConvGeom(xs[0], ws[1], ho, wo, ws[0], k, stride, pad, false)
	if err != nil {
		return nil, fmt.Errorf("%s of input %v with weight %v: %w", name, xs, ws, err)
	}
	if g.ho != xs[2] || g.wo != xs[3] {
		return nil, fmt.Errorf("%w: %s: input %v with weight %v, stride %d, padding %d has no matching convolution",
			ErrInvalidShape, name, xs, ws, stride, pad)
	}
	op := newConvDataOp(name, g, b != nil, graphArena(x))
	op.grads = newUse(sink)
	if b == nil {
		return gorgonia.ApplyOp(op, x, w)
	}
	return gorgonia.ApplyOp(op, x, w, b)
}
