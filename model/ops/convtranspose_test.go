package ops

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func convTransposeBuilder(stride, pad, outputPad int) func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		var b *gorgonia.Node
		if len(in) > 2 {
			b = in[2]
		}
		return ConvTranspose2d(in[0], in[1], b, stride, pad, outputPad)
	}
}

func TestConvTranspose2dKnownValues(t *testing.T) {
	// Each input pixel adds a 3×3 block of its value at (2i, 2j) of the uncropped 5×5 output.
	// Padding 1 crops one row and column at the start, and output padding 1 keeps a fourth row.
	x := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float64{1, 2, 3, 4}))
	w := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1}))
	b := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{-1}))
	got := runForward(t, convTransposeBuilder(2, 1, 1), x, w, b)
	want := []float64{
		0, 2, 1, 1,
		3, 9, 5, 5,
		2, 6, 3, 3,
		2, 6, 3, 3,
	}
	assertClose(t, "output", got, want, 1e-12)
}

type convTransposeCase struct {
	n, cin, h, w, cout, k, stride, pad, outputPad int
	bias                                          bool
}

func (c convTransposeCase) String() string {
	return fmt.Sprintf("x%dx%dx%dx%d_w%dx%dx%d_s%d_p%d_op%d_bias%t", c.n, c.cin, c.h, c.w, c.cin, c.cout, c.k, c.stride, c.pad, c.outputPad, c.bias)
}

var convTransposeCases = []convTransposeCase{
	{n: 1, cin: 3, h: 4, w: 4, cout: 2, k: 3, stride: 2, pad: 1, outputPad: 1, bias: true},
	{n: 2, cin: 2, h: 3, w: 5, cout: 3, k: 3, stride: 2, pad: 1, outputPad: 1, bias: true},
	{n: 2, cin: 2, h: 4, w: 3, cout: 2, k: 3, stride: 1, pad: 1},
	{n: 1, cin: 2, h: 3, w: 4, cout: 2, k: 4, stride: 3, pad: 2, outputPad: 2, bias: true},
	{n: 1, cin: 1, h: 2, w: 3, cout: 2, k: 2, stride: 2, pad: 0},
}

// zeroInsertionConv computes the transposed convolution independently: insert stride−1 zeros
// between input pixels, pad by K−1−pad (plus outputPad at the end), and convolve with stride 1
// and the kernel flipped in space with input and output channels swapped.
func zeroInsertionConv(c convTransposeCase, x, w, b []float64) []float64 {
	lead := c.k - 1 - c.pad
	zh := (c.h-1)*c.stride + 1 + 2*lead + c.outputPad
	zw := (c.w-1)*c.stride + 1 + 2*lead + c.outputPad
	z := make([]float64, c.n*c.cin*zh*zw)
	for i := 0; i < c.n; i++ {
		for ch := 0; ch < c.cin; ch++ {
			for r := 0; r < c.h; r++ {
				for col := 0; col < c.w; col++ {
					z[((i*c.cin+ch)*zh+lead+r*c.stride)*zw+lead+col*c.stride] = x[((i*c.cin+ch)*c.h+r)*c.w+col]
				}
			}
		}
	}
	flipped := make([]float64, len(w))
	for ci := 0; ci < c.cin; ci++ {
		for co := 0; co < c.cout; co++ {
			for kh := 0; kh < c.k; kh++ {
				for kw := 0; kw < c.k; kw++ {
					flipped[((co*c.cin+ci)*c.k+kh)*c.k+kw] = w[((ci*c.cout+co)*c.k+c.k-1-kh)*c.k+c.k-1-kw]
				}
			}
		}
	}
	y, _, _ := directConv(z, c.n, c.cin, zh, zw, flipped, c.cout, c.k, b, 1, 0, false)
	return y
}

func TestConvTranspose2dMatchesZeroInsertion(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, c := range convTransposeCases {
			t.Run(fmt.Sprintf("%v_%v", dt, c), func(t *testing.T) {
				x := randomTensor(rng, dt, c.n, c.cin, c.h, c.w)
				w := randomTensor(rng, dt, c.cin, c.cout, c.k, c.k)
				values := []*tensor.Dense{x, w}
				var b []float64
				if c.bias {
					bt := randomTensor(rng, dt, c.cout)
					values = append(values, bt)
					b = float64s(t, bt)
				}
				got := runForward(t, convTransposeBuilder(c.stride, c.pad, c.outputPad), values...)
				want := zeroInsertionConv(c, float64s(t, x), float64s(t, w), b)
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				assertClose(t, "output", got, want, tol)
			})
		}
	}
}

func TestConvTranspose2dGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, c := range convTransposeCases {
		t.Run(c.String(), func(t *testing.T) {
			values := []*tensor.Dense{
				randomTensor(rng, tensor.Float64, c.n, c.cin, c.h, c.w),
				randomTensor(rng, tensor.Float64, c.cin, c.cout, c.k, c.k),
			}
			if c.bias {
				values = append(values, randomTensor(rng, tensor.Float64, c.cout))
			}
			checkGradients(t, convTransposeBuilder(c.stride, c.pad, c.outputPad), values...)
		})
	}
}

func TestConvTranspose2dFloat32GradientsMatchFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	cases := append([]convTransposeCase(nil), convTransposeCases...)
	cases = append(cases,
		convTransposeCase{n: 1, cin: 128, h: 16, w: 16, cout: 64, k: 3, stride: 2, pad: 1, outputPad: 1},
		convTransposeCase{n: 1, cin: 64, h: 32, w: 32, cout: 32, k: 3, stride: 2, pad: 1, outputPad: 1, bias: true},
	)
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			values := []*tensor.Dense{
				randomTensor(rng, tensor.Float64, c.n, c.cin, c.h, c.w),
				randomTensor(rng, tensor.Float64, c.cin, c.cout, c.k, c.k),
			}
			if c.bias {
				values = append(values, randomTensor(rng, tensor.Float64, c.cout))
			}
			checkFloat32Gradients(t, convTransposeBuilder(c.stride, c.pad, c.outputPad), values...)
		})
	}
}

func TestConvTranspose2dOutputShape(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 128, 16, 16), gorgonia.WithName("x"))
	w := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(128, 64, 3, 3), gorgonia.WithName("w"))
	y, err := ConvTranspose2d(x, w, nil, 2, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := (tensor.Shape{1, 64, 32, 32}); !y.Shape().Eq(want) {
		t.Fatalf("output shape %v, want %v", y.Shape(), want)
	}
}

func TestConvTranspose2dRejectsInvalidArguments(t *testing.T) {
	tests := []struct {
		name                   string
		x, w                   tensor.Shape
		stride, pad, outputPad int
		want                   error
	}{
		{name: "weight channels", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{3, 2, 3, 3}, stride: 2, want: ErrInvalidShape},
		{name: "weight rank", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{2, 2, 3}, stride: 2, want: ErrInvalidShape},
		{name: "output padding not below stride", x: tensor.Shape{1, 2, 4, 4}, w: tensor.Shape{2, 2, 3, 3}, stride: 2, pad: 1, outputPad: 2, want: ErrInvalidArgument},
		{name: "empty output", x: tensor.Shape{1, 2, 1, 1}, w: tensor.Shape{2, 2, 3, 3}, stride: 1, pad: 2, want: ErrInvalidShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, tensor.Float32, len(tc.x), gorgonia.WithShape(tc.x...), gorgonia.WithName("x"))
			w := gorgonia.NewTensor(g, tensor.Float32, len(tc.w), gorgonia.WithShape(tc.w...), gorgonia.WithName("w"))
			_, err := ConvTranspose2d(x, w, nil, tc.stride, tc.pad, tc.outputPad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}
