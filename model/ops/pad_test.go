package ops

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func padBuilder(pad int) func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return ReflectionPad2d(in[0], pad)
	}
}

func TestReflectionPad2dPad3KnownValues(t *testing.T) {
	// x[r][c] = 4r + c on a 4×4 plane. Padding 3 reads rows and columns 3 2 1 0 1 2 3 2 1 0.
	data := make([]float64, 16)
	for i := range data {
		data[i] = float64(i)
	}
	x := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(data))
	got := runForward(t, padBuilder(3), x)
	if len(got) != 100 {
		t.Fatalf("output has %d elements, want 100", len(got))
	}
	firstRow := []float64{15, 14, 13, 12, 13, 14, 15, 14, 13, 12}
	fourthRow := []float64{3, 2, 1, 0, 1, 2, 3, 2, 1, 0}
	assertClose(t, "row 0", got[:10], firstRow, 0)
	assertClose(t, "row 3", got[30:40], fourthRow, 0)
	assertClose(t, "row 9", got[90:100], fourthRow, 0)
	sourceRow := []int{3, 2, 1, 0, 1, 2, 3, 2, 1, 0}
	for r, src := range sourceRow {
		want := make([]float64, 10)
		for c := range want {
			want[c] = fourthRow[c] + 4*float64(src)
		}
		assertClose(t, "padded row", got[r*10:(r+1)*10], want, 0)
	}
}

func TestReflectionPad2dGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	tests := []struct {
		name  string
		shape []int
		pad   int
	}{
		{"pad 1 square", []int{1, 2, 4, 4}, 1},
		{"pad 3 non-square batch 2", []int{2, 2, 5, 7}, 3},
		{"pad 2 single row pairs", []int{1, 1, 3, 6}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGradients(t, padBuilder(tc.pad), randomTensor(rng, tensor.Float64, tc.shape...))
		})
	}
}

func TestReflectionPad2dMatchesConvReflect(t *testing.T) {
	// A 1×1 identity convolution of the padded input is the padded input; Conv2dReflect with
	// a 3×3 kernel must equal Conv2d (pad 0) of ReflectionPad2d's output.
	rng := rand.New(rand.NewPCG(33, 34))
	x := randomTensor(rng, tensor.Float64, 2, 3, 6, 5)
	w := randomTensor(rng, tensor.Float64, 4, 3, 3, 3)
	fused := runForward(t, conv2dBuilder(1, 1, true), x, w)
	composed := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		p, err := ReflectionPad2d(in[0], 1)
		if err != nil {
			return nil, err
		}
		return Conv2d(p, in[1], nil, 1, 0)
	}, x, w)
	assertClose(t, "Conv2dReflect", fused, composed, 1e-12)
}

func TestReflectionPad2dRejectsInvalidPadding(t *testing.T) {
	tests := []struct {
		name  string
		shape tensor.Shape
		pad   int
		want  error
	}{
		{"pad equals height", tensor.Shape{1, 1, 3, 8}, 3, ErrInvalidArgument},
		{"negative pad", tensor.Shape{1, 1, 4, 4}, -1, ErrInvalidArgument},
		{"rank 3", tensor.Shape{1, 4, 4}, 1, ErrInvalidShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, tensor.Float32, len(tc.shape), gorgonia.WithShape(tc.shape...), gorgonia.WithName("x"))
			if _, err := ReflectionPad2d(x, tc.pad); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}
