package ops

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestLossValues(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float64{-2, 0, 0.5, 3}))
	y := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float64{1, 0, -0.5, 4}))
	softplus := func(z float64) float64 { return math.Log(1 + math.Exp(z)) }
	tests := []struct {
		name  string
		build func(in []*gorgonia.Node) (*gorgonia.Node, error)
		want  float64
	}{
		{"squared error to 1", func(in []*gorgonia.Node) (*gorgonia.Node, error) { return MeanSquaredError(in[0], 1) }, (9 + 1 + 0.25 + 4) / 4},
		{"squared error to 0", func(in []*gorgonia.Node) (*gorgonia.Node, error) { return MeanSquaredError(in[0], 0) }, (4 + 0 + 0.25 + 9) / 4},
		{"absolute error", func(in []*gorgonia.Node) (*gorgonia.Node, error) { return MeanAbsoluteError(in[0], in[1]) }, (3.0 + 0 + 1 + 1) / 4},
		{"cross-entropy real", func(in []*gorgonia.Node) (*gorgonia.Node, error) { return BinaryCrossEntropyWithLogits(in[0], true) },
			(softplus(2) + softplus(0) + softplus(-0.5) + softplus(-3)) / 4},
		{"cross-entropy fake", func(in []*gorgonia.Node) (*gorgonia.Node, error) { return BinaryCrossEntropyWithLogits(in[0], false) },
			(softplus(-2) + softplus(0) + softplus(0.5) + softplus(3)) / 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) { return tc.build(in) }, x, y)
			if len(got) != 1 || math.Abs(got[0]-tc.want) > 1e-15 {
				t.Errorf("loss = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCrossEntropyHugeLogits checks the overflow-free form: a logit of ±1e30 gives a finite
// loss in float32.
func TestCrossEntropyHugeLogits(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 1, 2), tensor.WithBacking([]float32{1e30, -1e30}))
	got := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return BinaryCrossEntropyWithLogits(in[0], true)
	}, x)
	if want := 1e30 / 2; math.Abs(got[0]-want) > 1e24 {
		t.Errorf("loss = %v, want %v", got[0], want)
	}
}

func TestLossGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	builders := map[string]func(in []*gorgonia.Node) (*gorgonia.Node, error){
		"squared":       func(in []*gorgonia.Node) (*gorgonia.Node, error) { return MeanSquaredError(in[0], 1) },
		"absolute":      func(in []*gorgonia.Node) (*gorgonia.Node, error) { return MeanAbsoluteError(in[0], in[1]) },
		"softplus real": func(in []*gorgonia.Node) (*gorgonia.Node, error) { return BinaryCrossEntropyWithLogits(in[0], true) },
		"softplus fake": func(in []*gorgonia.Node) (*gorgonia.Node, error) { return BinaryCrossEntropyWithLogits(in[0], false) },
	}
	for name, build := range builders {
		t.Run(name, func(t *testing.T) {
			values := []*tensor.Dense{randomTensor(rng, tensor.Float64, 1, 2, 3, 3)}
			if name == "absolute" {
				values = append(values, randomTensor(rng, tensor.Float64, 1, 2, 3, 3))
			}
			checkGradients(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) { return build(in) }, values...)
		})
	}
}

func TestLossRejects(t *testing.T) {
	g := gorgonia.NewGraph()
	a := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 2, 2), gorgonia.WithName("a"))
	b := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 1, 2, 3), gorgonia.WithName("b"))
	if _, err := MeanAbsoluteError(a, b); !errors.Is(err, ErrInvalidShape) {
		t.Errorf("MeanAbsoluteError of mismatched shapes: error = %v, want ErrInvalidShape", err)
	}
	if _, err := MeanAbsoluteError(a, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("MeanAbsoluteError(a, nil): error = %v, want ErrInvalidArgument", err)
	}
	if _, err := MeanSquaredError(a, math.NaN()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("MeanSquaredError to NaN: error = %v, want ErrInvalidArgument", err)
	}
}

// TestLossOverflowsLikeFloat32 checks that a float32 loss whose sum leaves the float32 range
// is infinite, as a float32 reduction would be, although each element is finite.
func TestLossOverflowsLikeFloat32(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 1, 4), tensor.WithBacking([]float32{3e38, 3e38, 3e38, 3e38}))
	got := runForward(t, func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return BinaryCrossEntropyWithLogits(in[0], false)
	}, x)
	if !math.IsInf(got[0], 1) {
		t.Errorf("loss = %v, want +Inf", got[0])
	}
}
