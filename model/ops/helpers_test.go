package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// randomTensor returns a tensor of the given shape and dtype with values uniform in [-1, 1).
func randomTensor(rng *rand.Rand, dt tensor.Dtype, shape ...int) *tensor.Dense {
	n := tensor.Shape(shape).TotalSize()
	if dt == tensor.Float32 {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.Float64()*2 - 1)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = rng.Float64()*2 - 1
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// float64s returns a copy of v's elements as float64.
func float64s(t *testing.T, v gorgonia.Value) []float64 {
	t.Helper()
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case float64:
		return []float64{d}
	case float32:
		return []float64{float64(d)}
	default:
		t.Fatalf("value %v has data of type %T", v, d)
		return nil
	}
}

// runForward builds one op with build on new input nodes holding values and returns its output.
func runForward(t *testing.T, build func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error), values ...*tensor.Dense) []float64 {
	t.Helper()
	g := gorgonia.NewGraph()
	in := inputNodes(g, values)
	out, err := build(g, in)
	if err != nil {
		t.Fatalf("building the op: %v", err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("running the op: %v", err)
	}
	return float64s(t, out.Value())
}

func inputNodes(g *gorgonia.ExprGraph, values []*tensor.Dense) []*gorgonia.Node {
	nodes := make([]*gorgonia.Node, len(values))
	for i, v := range values {
		if v == nil {
			continue
		}
		nodes[i] = gorgonia.NewTensor(g, v.Dtype(), v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithValue(v),
			gorgonia.WithName(string(rune('a'+i))))
	}
	return nodes
}

// checkGradients compares the gradients that gorgonia.Grad and a TapeMachine compute for every
// non-nil float64 input with central finite differences of the cost sum(out ⊙ r), r random.
// Up to samples elements of each input are checked.
func checkGradients(t *testing.T, build func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error), values ...*tensor.Dense) {
	t.Helper()
	const (
		step    = 1e-6
		tol     = 1e-6 // on |analytic − numeric| / max(1, |numeric|)
		samples = 24
	)
	rng := rand.New(rand.NewPCG(7, 8))
	g := gorgonia.NewGraph()
	in := inputNodes(g, values)
	out, err := build(g, in)
	if err != nil {
		t.Fatalf("building the op: %v", err)
	}
	cost := out // a scalar output is the cost itself
	if !out.IsScalar() {
		weights := gorgonia.NewConstant(randomTensor(rng, tensor.Float64, out.Shape()...), gorgonia.WithName("r"))
		prod, err := gorgonia.HadamardProd(out, weights)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := gorgonia.Reshape(prod, tensor.Shape{out.Shape().TotalSize()})
		if err != nil {
			t.Fatal(err)
		}
		if cost, err = gorgonia.Sum(flat); err != nil {
			t.Fatal(err)
		}
	}
	var wrt []*gorgonia.Node
	for _, n := range in {
		if n != nil {
			wrt = append(wrt, n)
		}
	}
	grads, err := gorgonia.Grad(cost, wrt...)
	if err != nil {
		t.Fatalf("gorgonia.Grad: %v", err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	runCost := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("running the graph: %v", err)
		}
		return float64s(t, cost.Value())[0]
	}
	runCost()
	analytic := make([][]float64, len(grads))
	for i, gr := range grads {
		analytic[i] = float64s(t, gr.Value())
	}
	for i, n := range wrt {
		data := n.Value().Data().([]float64)
		if len(analytic[i]) != len(data) {
			t.Fatalf("gradient of %s has %d elements, want %d", n.Name(), len(analytic[i]), len(data))
		}
		for s := 0; s < samples && s < len(data); s++ {
			j := s
			if len(data) > samples {
				j = rng.IntN(len(data))
			}
			orig := data[j]
			data[j] = orig + step
			plus := runCost()
			data[j] = orig - step
			minus := runCost()
			data[j] = orig
			numeric := (plus - minus) / (2 * step)
			if diff := math.Abs(analytic[i][j]-numeric) / math.Max(1, math.Abs(numeric)); diff > tol {
				t.Errorf("d cost / d %s[%d] = %.10g, finite difference %.10g (relative error %.2g > %g)", n.Name(), j, analytic[i][j], numeric, diff, tol)
			}
		}
	}
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d elements, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.9g, want %.9g (tolerance %g)", what, i, got[i], want[i], tol)
		}
	}
}

// directConv is the reference convolution: x [n, cin, h, w] padded by zeros or reflection,
// weight [cout, cin, k, k].
func directConv(x []float64, n, cin, h, w int, wt []float64, cout, k int, b []float64, stride, pad int, reflect bool) (y []float64, ho, wo int) {
	ho = (h+2*pad-k)/stride + 1
	wo = (w+2*pad-k)/stride + 1
	y = make([]float64, n*cout*ho*wo)
	at := func(i, c, r, col int) float64 {
		if reflect {
			if r < 0 {
				r = -r
			} else if r >= h {
				r = 2*(h-1) - r
			}
			if col < 0 {
				col = -col
			} else if col >= w {
				col = 2*(w-1) - col
			}
		} else if r < 0 || r >= h || col < 0 || col >= w {
			return 0
		}
		return x[((i*cin+c)*h+r)*w+col]
	}
	for i := 0; i < n; i++ {
		for o := 0; o < cout; o++ {
			for oy := 0; oy < ho; oy++ {
				for ox := 0; ox < wo; ox++ {
					var sum float64
					if b != nil {
						sum = b[o]
					}
					for c := 0; c < cin; c++ {
						for ky := 0; ky < k; ky++ {
							for kx := 0; kx < k; kx++ {
								sum += wt[((o*cin+c)*k+ky)*k+kx] * at(i, c, oy*stride-pad+ky, ox*stride-pad+kx)
							}
						}
					}
					y[((i*cout+o)*ho+oy)*wo+ox] = sum
				}
			}
		}
	}
	return y, ho, wo
}

// checkFloat32Gradients compares the float32 gradients of every input with the float64
// ones for the same values, so that the float32 kernels (the ones training uses) are checked
// against the finite-difference-checked float64 path.
func checkFloat32Gradients(t *testing.T, build func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error), values ...*tensor.Dense) {
	t.Helper()
	run := func(dt tensor.Dtype) [][]float64 {
		g := gorgonia.NewGraph()
		converted := make([]*tensor.Dense, len(values))
		for i, v := range values {
			converted[i] = convertTensor(t, v, dt)
		}
		in := inputNodes(g, converted)
		out, err := build(g, in)
		if err != nil {
			t.Fatalf("building the op: %v", err)
		}
		rng := rand.New(rand.NewPCG(9, 10))
		weights := gorgonia.NewConstant(convertTensor(t, randomTensor(rng, tensor.Float64, out.Shape()...), dt), gorgonia.WithName("r"))
		prod, err := gorgonia.HadamardProd(out, weights)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := gorgonia.Reshape(prod, tensor.Shape{out.Shape().TotalSize()})
		if err != nil {
			t.Fatal(err)
		}
		cost, err := gorgonia.Sum(flat)
		if err != nil {
			t.Fatal(err)
		}
		grads, err := gorgonia.Grad(cost, in...)
		if err != nil {
			t.Fatalf("gorgonia.Grad: %v", err)
		}
		vm := gorgonia.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("running the graph: %v", err)
		}
		result := make([][]float64, len(grads))
		for i, gr := range grads {
			result[i] = float64s(t, gr.Value())
		}
		return result
	}
	want, got := run(tensor.Float64), run(tensor.Float32)
	for i := range want {
		assertClose(t, fmt.Sprintf("float32 gradient of input %d", i), got[i], want[i], 1e-4)
	}
}

// convertTensor returns a copy of v with element type dt.
func convertTensor(t *testing.T, v *tensor.Dense, dt tensor.Dtype) *tensor.Dense {
	t.Helper()
	data := float64s(t, v)
	if dt == tensor.Float64 {
		return tensor.New(tensor.WithShape(v.Shape()...), tensor.WithBacking(data))
	}
	out := make([]float32, len(data))
	for i, x := range data {
		out[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(v.Shape()...), tensor.WithBacking(out))
}
