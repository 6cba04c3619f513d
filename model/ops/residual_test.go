package ops

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// residualBlocks builds two residual blocks in a row, each a reflection-padded 3×3
// convolution, instance norm with ReLU and a second convolution, on inputs x, w1, w2, w3, w4.
func residualBlocks(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	x := in[0]
	for block := 0; block < 2; block++ {
		first, err := Conv2dReflect(x, in[1+2*block], nil, 1, 1)
		if err != nil {
			return nil, err
		}
		h, err := InstanceNorm(first, 1e-5, ReLU())
		if err != nil {
			return nil, err
		}
		f, err := Conv2dReflect(h, in[2+2*block], nil, 1, 1)
		if err != nil {
			return nil, err
		}
		if x, err = ResidualAdd(x, f, first); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func TestResidualAddGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	checkGradients(t, residualBlocks,
		randomTensor(rng, tensor.Float64, 1, 3, 5, 5),
		randomTensor(rng, tensor.Float64, 3, 3, 3, 3),
		randomTensor(rng, tensor.Float64, 3, 3, 3, 3),
		randomTensor(rng, tensor.Float64, 3, 3, 3, 3),
		randomTensor(rng, tensor.Float64, 3, 3, 3, 3))
}

func TestResidualAddForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	x := randomTensor(rng, tensor.Float32, 1, 2, 4, 4)
	f := randomTensor(rng, tensor.Float32, 1, 2, 4, 4)
	w := randomTensor(rng, tensor.Float32, 2, 2, 3, 3)
	got := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		first, err := Conv2d(in[0], in[2], nil, 1, 1)
		if err != nil {
			return nil, err
		}
		return ResidualAdd(in[0], in[1], first)
	}, x, f, w)
	xs, fs := x.Data().([]float32), f.Data().([]float32)
	for i := range xs {
		if want := float64(xs[i] + fs[i]); got[i] != want {
			t.Fatalf("output[%d] = %v, want %v", i, got[i], want)
		}
	}
}

func TestResidualAddRejects(t *testing.T) {
	g := gorgonia.NewGraph()
	node := func(name string, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
	}
	x, other, f := node("x", 1, 2, 4, 4), node("other", 1, 2, 4, 4), node("f", 1, 2, 4, 4)
	small := node("small", 1, 2, 3, 3)
	w := node("w", 2, 2, 3, 3)
	first, err := Conv2d(x, w, nil, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	notFirst, err := Conv2d(other, w, nil, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := InstanceNorm(x, 1e-5, ReLU())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		x, f, first *gorgonia.Node
		want        error
	}{
		{"nil first", x, f, nil, ErrInvalidArgument},
		{"shape mismatch", x, small, first, ErrInvalidShape},
		{"first is not a convolution", x, f, norm, ErrInvalidArgument},
		{"first reads another input", x, f, notFirst, ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ResidualAdd(tc.x, tc.f, tc.first); !errors.Is(err, tc.want) {
				t.Errorf("ResidualAdd error = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ResidualAdd(x, f, first); err != nil {
		t.Fatalf("ResidualAdd: %v", err)
	}
	if _, err := ResidualAdd(x, f, first); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("second ResidualAdd on one convolution: error = %v, want ErrInvalidArgument", err)
	}
}
