package ops

import (
	"fmt"

	"gorgonia.org/tensor"
)

// convGeom is the geometry of a convolution from an input [n, cin, h, w] through a weight
// [cout, cin, k, k] to an output [n, cout, ho, wo]. A transposed convolution uses the geometry
// of the convolution whose adjoint it is, so its own input is this geometry's output.
type convGeom struct {
	n, cin, h, w int
	cout, k      int
	stride, pad  int
	reflect      bool // pad by reflection instead of zeros
	ho, wo       int

	// flipped is the stride-1 convolution that computes this convolution's input gradient
	// (over the reflection-padded input when reflect is set); nil where there is none.
	flipped *convGeom
}

// flippedMaxOut is the largest output channel count for which the input gradient is computed
// as a flipped-kernel convolution. With more channels col2im(Wᵀ·dy) is faster: 0.97 against
// 1.38 CPU-ms for the 3×3, 128-channel, 16×16 convolution of the CycleGAN residual blocks.
// With few channels the col2im GEMM has too short an inner dimension: 7.3 against 0.9 CPU-ms
// for the 7×7 convolution to 3 channels (BenchmarkConv, 2-core Xeon with AVX-512).
const flippedMaxOut = 32

func newConvGeom(n, cin, h, w, cout, k, stride, pad int, reflect bool) (convGeom, error) {
	return buildConvGeom(n, cin, h, w, cout, k, stride, pad, reflect, true)
}

// buildConvGeom builds the geometry, and with withFlipped the input-gradient convolution.
func buildConvGeom(n, cin, h, w, cout, k, stride, pad int, reflect, withFlipped bool) (convGeom, error) {
	g := convGeom{n: n, cin: cin, h: h, w: w, cout: cout, k: k, stride: stride, pad: pad, reflect: reflect}
	if stride < 1 {
		return g, fmt.Errorf("%w: stride %d, want ≥ 1", ErrInvalidArgument, stride)
	}
	if pad < 0 {
		return g, fmt.Errorf("%w: padding %d, want ≥ 0", ErrInvalidArgument, pad)
	}
	if reflect && (pad >= h || pad >= w) {
		return g, fmt.Errorf("%w: reflection padding %d needs an input larger than %d×%d in each dimension", ErrInvalidArgument, pad, h, w)
	}
	if h+2*pad < k || w+2*pad < k {
		return g, fmt.Errorf("%w: %d×%d kernel is larger than the padded input %d×%d", ErrInvalidShape, k, k, h+2*pad, w+2*pad)
	}
	g.ho = (h+2*pad-k)/stride + 1
	g.wo = (w+2*pad-k)/stride + 1
	if withFlipped && stride == 1 && cout <= flippedMaxOut && (reflect || pad <= k-1) {
		// The input gradient of a stride-1 convolution is the convolution of the output
		// gradient, zero-padded by k−1−pad, with the kernel flipped in space and its channel
		// axes swapped. With reflection padding it is computed for the padded input (pad 0
		// there) and folded back onto the input afterwards.
		flippedPad := k - 1 - pad
		if reflect {
			flippedPad = k - 1
		}
		f, err := buildConvGeom(n, cout, g.ho, g.wo, cin, k, 1, flippedPad, false, false)
		if err != nil {
			return g, fmt.Errorf("input-gradient convolution of %v: %w", g, err)
		}
		g.flipped = &f
	}
	return g, nil
}

// reflectIndex maps a position outside [0, size) to its mirror image without repeating the
// edge, as PyTorch's ReflectionPad2d does. The position must lie within size-1 of the edge.
func reflectIndex(i, size int) int {
	if i < 0 {
		return -i
	}
	if i >= size {
		return 2*(size-1) - i
	}
	return i
}

// paddedH and paddedW are the input's size with the padding on both sides.
func (g convGeom) paddedH() int { return g.h + 2*g.pad }
func (g convGeom) paddedW() int { return g.w + 2*g.pad }

func (g convGeom) inShape() tensor.Shape     { return tensor.Shape{g.n, g.cin, g.h, g.w} }
func (g convGeom) outShape() tensor.Shape    { return tensor.Shape{g.n, g.cout, g.ho, g.wo} }
func (g convGeom) weightShape() tensor.Shape { return tensor.Shape{g.cout, g.cin, g.k, g.k} }

// colRows and colCols are the sizes of the im2col matrix of one sample.
func (g convGeom) colRows() int { return g.cin * g.k * g.k }
func (g convGeom) colCols() int { return g.ho * g.wo }

func (g convGeom) String() string {
	padding := "zero"
	if g.reflect {
		padding = "reflect"
	}
	return fmt.Sprintf("in=%v w=%v out=%v stride=%d pad=%d(%s)", g.inShape(), g.weightShape(), g.outShape(), g.stride, g.pad, padding)
}
