package ops

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func normBuilder(eps float64, act Activation) func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error) {
		return InstanceNorm(in[0], eps, act)
	}
}

func TestInstanceNormKnownValues(t *testing.T) {
	// Channel 0 is 1 2 3 4: mean 2.5, biased variance 1.25. Channel 1 is constant.
	x := tensor.New(tensor.WithShape(1, 2, 2, 2), tensor.WithBacking([]float64{1, 2, 3, 4, 7, 7, 7, 7}))
	s := 1 / math.Sqrt(1.25+1e-5)
	tests := []struct {
		name string
		act  Activation
		want []float64
	}{
		{"none", Activation{}, []float64{-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0, 0, 0, 0}},
		{"relu", ReLU(), []float64{0, 0, 0.5 * s, 1.5 * s, 0, 0, 0, 0}},
		{"leaky relu 0.2", LeakyReLU(0.2), []float64{-0.3 * s, -0.1 * s, 0.5 * s, 1.5 * s, 0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runForward(t, normBuilder(1e-5, tc.act), x)
			assertClose(t, "output", got, tc.want, 1e-12)
		})
	}
}

func TestInstanceNormConstantChannelGradient(t *testing.T) {
	// A constant plane normalises to 0 with a finite gradient, not NaN.
	x := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float32{2, 2, 2, 2, 2, 2, 2, 2, 2}))
	g := gorgonia.NewGraph()
	xn := inputNodes(g, []*tensor.Dense{x})[0]
	y, err := InstanceNorm(xn, 1e-5, ReLU())
	if err != nil {
		t.Fatal(err)
	}
	flat, err := gorgonia.Reshape(y, tensor.Shape{9})
	if err != nil {
		t.Fatal(err)
	}
	cost, err := gorgonia.Sum(flat)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := gorgonia.Grad(cost, xn)
	if err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, v := range float64s(t, y.Value()) {
		if v != 0 {
			t.Fatalf("output[%d] = %v, want 0", i, v)
		}
	}
	for i, v := range float64s(t, grads[0].Value()) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("gradient[%d] = %v, want a finite number", i, v)
		}
	}
}

// directInstanceNorm is the reference in float64: per plane mean, biased variance, then act.
func directInstanceNorm(x []float64, planes, size int, eps, slope float64) []float64 {
	y := make([]float64, len(x))
	for p := 0; p < planes; p++ {
		plane := x[p*size : (p+1)*size]
		var mean, variance float64
		for _, v := range plane {
			mean += v
		}
		mean /= float64(size)
		for _, v := range plane {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(size)
		for i, v := range plane {
			n := (v - mean) / math.Sqrt(variance+eps)
			if n < 0 {
				n *= slope
			}
			y[p*size+i] = n
		}
	}
	return y
}

func TestInstanceNormLargePlanesMatchDirect(t *testing.T) {
	// 32×32 and 64×48 planes (H·W ≥ 1024), with an offset that makes a one-pass float32
	// variance lose digits.
	rng := rand.New(rand.NewPCG(41, 42))
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, shape := range [][]int{{1, 3, 32, 32}, {2, 2, 64, 48}} {
			t.Run(fmt.Sprintf("%v_%v", dt, shape), func(t *testing.T) {
				x := randomTensor(rng, dt, shape...)
				if d, ok := x.Data().([]float32); ok {
					for i := range d {
						d[i] = 3*d[i] + 50
					}
				} else {
					d := x.Data().([]float64)
					for i := range d {
						d[i] = 3*d[i] + 50
					}
				}
				got := runForward(t, normBuilder(1e-5, LeakyReLU(0.2)), x)
				want := directInstanceNorm(float64s(t, x), shape[0]*shape[1], shape[2]*shape[3], 1e-5, 0.2)
				tol := 1e-10
				if dt == tensor.Float32 {
					tol = 2e-5
				}
				assertClose(t, "output", got, want, tol)
			})
		}
	}
}

func TestInstanceNormGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	tests := []struct {
		name  string
		shape []int
		act   Activation
	}{
		{"none square", []int{1, 2, 4, 4}, Activation{}},
		{"relu non-square batch 2", []int{2, 3, 3, 5}, ReLU()},
		{"leaky relu", []int{2, 2, 5, 4}, LeakyReLU(0.2)},
		{"leaky relu 32x32", []int{1, 1, 32, 32}, LeakyReLU(0.2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGradients(t, normBuilder(1e-5, tc.act), randomTensor(rng, tensor.Float64, tc.shape...))
		})
	}
}

func TestInstanceNormRejectsInvalidArguments(t *testing.T) {
	tests := []struct {
		name  string
		shape tensor.Shape
		eps   float64
		act   Activation
		want  error
	}{
		{"zero eps", tensor.Shape{1, 1, 2, 2}, 0, Activation{}, ErrInvalidArgument},
		{"NaN eps", tensor.Shape{1, 1, 2, 2}, math.NaN(), Activation{}, ErrInvalidArgument},
		{"negative slope", tensor.Shape{1, 1, 2, 2}, 1e-5, LeakyReLU(-1), ErrInvalidArgument},
		{"unknown activation", tensor.Shape{1, 1, 2, 2}, 1e-5, Activation{Kind: 9}, ErrInvalidArgument},
		{"rank 2", tensor.Shape{4, 4}, 1e-5, Activation{}, ErrInvalidShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, tensor.Float32, len(tc.shape), gorgonia.WithShape(tc.shape...), gorgonia.WithName("x"))
			if _, err := InstanceNorm(x, tc.eps, tc.act); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}
