package ops

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func tanhBuilder(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	return Tanh(in[0])
}

func TestTanhValues(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking([]float64{-20, -1, -0.5, 0, 0.25, 3}))
	got := runForward(t, tanhBuilder, x)
	for i, v := range x.Data().([]float64) {
		if want := math.Tanh(v); got[i] != want {
			t.Errorf("tanh(%v) = %v, want %v", v, got[i], want)
		}
	}
}

func TestTanhGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	checkGradients(t, tanhBuilder, randomTensor(rng, tensor.Float64, 2, 3, 4, 5))
}

func TestTanhRejects(t *testing.T) {
	g := gorgonia.NewGraph()
	flat := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(3, 4), gorgonia.WithName("flat"))
	if _, err := Tanh(flat); !errors.Is(err, ErrInvalidShape) {
		t.Errorf("Tanh of a 2-D input: error = %v, want ErrInvalidShape", err)
	}
	if _, err := Tanh(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Tanh(nil): error = %v, want ErrInvalidArgument", err)
	}
}

func TestActivateValues(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking([]float64{-2, -0.5, 0, 0.25, 1, 3}))
	tests := []struct {
		name string
		act  Activation
		want []float64
	}{
		{"relu", ReLU(), []float64{0, 0, 0, 0.25, 1, 3}},
		{"leaky 0.2", LeakyReLU(0.2), []float64{-0.4, -0.1, 0, 0.25, 1, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
				return Activate(in[0], tc.act)
			}, x)
			assertClose(t, "output", got, tc.want, 1e-15)
		})
	}
}

func TestActivateGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, act := range []Activation{ReLU(), LeakyReLU(0.2)} {
		t.Run(act.String(), func(t *testing.T) {
			checkGradients(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
				return Activate(in[0], act)
			}, randomTensor(rng, tensor.Float64, 1, 2, 3, 4))
		})
	}
}

func TestActivateNoneAndInvalid(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 2, 2), gorgonia.WithName("x"))
	if y, err := Activate(x, Activation{}); err != nil || y != x {
		t.Errorf("Activate(x, none) = %v, %v; want x itself", y, err)
	}
	if _, err := Activate(x, Activation{Kind: ActivationLeakyReLU, Slope: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Activate with slope −1: error = %v, want ErrInvalidArgument", err)
	}
}
