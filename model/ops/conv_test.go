package ops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func conv2dBuilder(stride, pad int, reflect bool) func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		var b *gorgonia.Node
		if len(in) > 2 {
			b = in[2]
		}
		if reflect {
			return Conv2dReflect(in[0], in[1], b, stride, pad)
		}
		return Conv2d(in[0], in[1], b, stride, pad)
	}
}

func TestConv2dKnownValues(t *testing.T) {
	nine := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}))
	tests := []struct {
		name    string
		w       *tensor.Dense
		b       *tensor.Dense
		stride  int
		pad     int
		reflect bool
		want    []float64
	}{
		{
			name: "2x2 ones no padding",
			w:    tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float64{1, 1, 1, 1})),
			want: []float64{12, 16, 24, 28},
		},
		{
			// Windows centred on (0,0), (0,2), (2,0), (2,2) of the zero-padded input.
			name:   "3x3 ones stride 2 pad 1 with bias",
			w:      tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1})),
			b:      tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0.5})),
			stride: 2, pad: 1,
			want: []float64{12.5, 16.5, 24.5, 28.5},
		},
		{
			// The reflection-padded input is rows [5 4 5 6 5], [2 1 2 3 2], ...; the kernel picks
			// the top-left element of each window.
			name: "reflect pad 1 top-left tap",
			w:    tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 0, 0, 0, 0, 0, 0, 0, 0})),
			pad:  1, stride: 1, reflect: true,
			want: []float64{5, 4, 5, 2, 1, 2, 5, 4, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values := []*tensor.Dense{nine, tc.w}
			if tc.b != nil {
				values = append(values, tc.b)
			}
			stride := max(tc.stride, 1)
			got := runForward(t, conv2dBuilder(stride, tc.pad, tc.reflect), values...)
			assertClose(t, "output", got, tc.want, 1e-12)
		})
	}
}

type convCase struct {
	n, cin, h, w, cout, k, stride, pad int
	reflect, bias                      bool
}

func (c convCase) String() string {
	return fmt.Sprintf("x%dx%dx%dx%d_w%dx%dx%d_s%d_p%d_reflect%t_bias%t", c.n, c.cin, c.h, c.w, c.cout, c.k, c.k, c.stride, c.pad, c.reflect, c.bias)
}

var convCases = []convCase{
	{n: 1, cin: 2, h: 5, w: 5, cout: 3, k: 3, stride: 1, pad: 1, bias: true},
	{n: 2, cin: 3, h: 6, w: 9, cout: 2, k: 3, stride: 2, pad: 1, bias: true},
	{n: 2, cin: 2, h: 7, w: 5, cout: 4, k: 3, stride: 1, pad: 1, reflect: true, bias: true},
	{n: 1, cin: 3, h: 8, w: 9, cout: 2, k: 7, stride: 1, pad: 3, reflect: true},
	{n: 1, cin: 2, h: 9, w: 8, cout: 3, k: 4, stride: 2, pad: 1, bias: true},
	{n: 2, cin: 1, h: 4, w: 6, cout: 1, k: 2, stride: 3, pad: 0},
	// More than kn2rowMaxOut output channels: the im2col GEMM path at stride 1.
	{n: 1, cin: 3, h: 9, w: 7, cout: 10, k: 3, stride: 1, pad: 1, reflect: true, bias: true},
	{n: 2, cin: 2, h: 6, w: 11, cout: 12, k: 3, stride: 1, pad: 1},
	{n: 1, cin: 12, h: 5, w: 6, cout: 9, k: 3, stride: 1, pad: 0, bias: true},
	{n: 1, cin: 2, h: 10, w: 9, cout: 9, k: 5, stride: 1, pad: 3},
	// More than flippedMaxOut output channels: the col2im input gradient at stride 1.
	{n: 2, cin: 2, h: 5, w: 4, cout: 33, k: 3, stride: 1, pad: 1, reflect: true},
	{n: 1, cin: 3, h: 6, w: 5, cout: 34, k: 3, stride: 1, pad: 2, bias: true},
}

func TestConv2dMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, c := range convCases {
			t.Run(fmt.Sprintf("%v_%v", dt, c), func(t *testing.T) {
				x := randomTensor(rng, dt, c.n, c.cin, c.h, c.w)
				w := randomTensor(rng, dt, c.cout, c.cin, c.k, c.k)
				values := []*tensor.Dense{x, w}
				var b []float64
				if c.bias {
					bt := randomTensor(rng, dt, c.cout)
					values = append(values, bt)
					b = float64s(t, bt)
				}
				got := runForward(t, conv2dBuilder(c.stride, c.pad, c.reflect), values...)
				want, _, _ := directConv(float64s(t, x), c.n, c.cin, c.h, c.w, float64s(t, w), c.cout, c.k, b, c.stride, c.pad, c.reflect)
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				assertClose(t, "output", got, want, tol)
			})
		}
	}
}

func TestConv2dGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			values := []*tensor.Dense{
				randomTensor(rng, tensor.Float64, c.n, c.cin, c.h, c.w),
				randomTensor(rng, tensor.Float64, c.cout, c.cin, c.k, c.k),
			}
			if c.bias {
				values = append(values, randomTensor(rng, tensor.Float64, c.cout))
			}
			checkGradients(t, conv2dBuilder(c.stride, c.pad, c.reflect), values...)
		})
	}
}

func TestConv2dFloat32GradientsMatchFloat64(t *testing.T) {
	for i, c := range append(convCases, benchConvCases()...) {
		t.Run(c.String(), func(t *testing.T) {
			// Each case draws its own values, so adding a case changes no other case's data.
			rng := rand.New(rand.NewPCG(15, uint64(i)))
			values := []*tensor.Dense{
				randomTensor(rng, tensor.Float64, c.n, c.cin, c.h, c.w),
				randomTensor(rng, tensor.Float64, c.cout, c.cin, c.k, c.k),
			}
			if c.bias {
				values = append(values, randomTensor(rng, tensor.Float64, c.cout))
			}
			checkFloat32Gradients(t, conv2dBuilder(c.stride, c.pad, c.reflect), values...)
		})
	}
}

// benchConvCases returns the benchmarked CycleGAN shapes that are plain convolutions.
func benchConvCases() []convCase {
	var out []convCase
	for _, bc := range benchConv {
		if !bc.transpose {
			out = append(out, bc.geom)
		}
	}
	return out
}

func TestConv2dRejectsInvalidShapes(t *testing.T) {
	tests := []struct {
		name    string
		x, w, b tensor.Shape
		stride  int
		pad     int
		reflect bool
		want    error
	}{
		{name: "input rank 3", x: tensor.Shape{1, 4, 4}, w: tensor.Shape{1, 1, 3, 3}, stride: 1, want: ErrInvalidShape},
		{name: "channel mismatch", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{1, 3, 3, 3}, stride: 1, want: ErrInvalidShape},
		{name: "non-square kernel", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{1, 2, 3, 2}, stride: 1, want: ErrInvalidShape},
		{name: "bias size", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{3, 2, 3, 3}, b: tensor.Shape{2}, stride: 1, want: ErrInvalidShape},
		{name: "kernel larger than input", x: tensor.Shape{1, 1, 2, 2}, w: tensor.Shape{1, 1, 3, 3}, stride: 1, want: ErrInvalidShape},
		{name: "zero stride", x: tensor.Shape{1, 1, 4, 4}, w: tensor.Shape{1, 1, 3, 3}, stride: 0, want: ErrInvalidArgument},
		{name: "negative padding", x: tensor.Shape{1, 1, 4, 4}, w: tensor.Shape{1, 1, 3, 3}, stride: 1, pad: -1, want: ErrInvalidArgument},
		{name: "reflect pad not below size", x: tensor.Shape{1, 1, 3, 8}, w: tensor.Shape{1, 1, 3, 3}, stride: 1, pad: 3, reflect: true, want: ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, tensor.Float32, len(tc.x), gorgonia.WithShape(tc.x...), gorgonia.WithName("x"))
			w := gorgonia.NewTensor(g, tensor.Float32, len(tc.w), gorgonia.WithShape(tc.w...), gorgonia.WithName("w"))
			var b *gorgonia.Node
			if tc.b != nil {
				b = gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(tc.b...), gorgonia.WithName("b"))
			}
			build := Conv2d
			if tc.reflect {
				build = Conv2dReflect
			}
			_, err := build(x, w, b, tc.stride, tc.pad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConv2dRejectsMixedDtypes(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 4, 4), gorgonia.WithName("x"))
	w := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(1, 1, 3, 3), gorgonia.WithName("w"))
	if _, err := Conv2d(x, w, nil, 1, 1); !errors.Is(err, ErrInvalidDtype) {
		t.Fatalf("error = %v, want ErrInvalidDtype", err)
	}
}
