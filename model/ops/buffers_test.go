package ops

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// planTestGraph builds a small generator-like network with its loss and the gradients of the
// weights: two residual blocks of reflection-padded convolutions and instance norms between
// an input and an output convolution, tanh, and an absolute-error loss against the input.
// It returns the graph, the gradient nodes and a Read of the tanh output.
func planTestGraph(t *testing.T, values []*tensor.Dense) (*gorgonia.ExprGraph, gorgonia.Nodes, *gorgonia.Value) {
	t.Helper()
	g := gorgonia.NewGraph()
	in := inputNodes(g, values)
	x, weights := in[0], in[1:]
	h, err := Conv2dReflect(x, weights[0], nil, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for block := 0; block < 2; block++ {
		first, err := Conv2dReflect(h, weights[1+2*block], nil, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		mid, err := InstanceNorm(first, 1e-5, ReLU())
		if err != nil {
			t.Fatal(err)
		}
		f, err := Conv2dReflect(mid, weights[2+2*block], nil, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if f, err = InstanceNorm(f, 1e-5, Activation{}); err != nil {
			t.Fatal(err)
		}
		if h, err = ResidualAdd(h, f, first); err != nil {
			t.Fatal(err)
		}
	}
	out, err := Conv2dReflect(h, weights[5], nil, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = Tanh(out); err != nil {
		t.Fatal(err)
	}
	loss, err := MeanAbsoluteError(out, x)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := gorgonia.Grad(loss, weights...)
	if err != nil {
		t.Fatal(err)
	}
	var read gorgonia.Value
	readNode := gorgonia.Read(out, &read)
	return g, append(grads, readNode), &read
}

func TestPlanBuffersKeepsResults(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	values := []*tensor.Dense{
		randomTensor(rng, tensor.Float32, 1, 3, 8, 8),
		randomTensor(rng, tensor.Float32, 4, 3, 3, 3),
		randomTensor(rng, tensor.Float32, 4, 4, 3, 3),
		randomTensor(rng, tensor.Float32, 4, 4, 3, 3),
		randomTensor(rng, tensor.Float32, 4, 4, 3, 3),
		randomTensor(rng, tensor.Float32, 4, 4, 3, 3),
		randomTensor(rng, tensor.Float32, 3, 4, 3, 3),
	}
	run := func(plan bool, runs int) ([][]float32, []float32, *BufferPlan) {
		g, roots, read := planTestGraph(t, values)
		sub := g.ExactSubgraphRoots(roots...)
		vm := gorgonia.NewTapeMachine(sub)
		defer vm.Close()
		var p *BufferPlan
		if plan {
			p = PlanBuffers(sub)
		}
		for range runs {
			vm.Reset()
			if p != nil {
				p.Reset()
			}
			if err := vm.RunAll(); err != nil {
				t.Fatalf("run: %v", err)
			}
		}
		var grads [][]float32
		for _, n := range roots[:len(roots)-1] {
			grads = append(grads, slices.Clone(n.Value().Data().([]float32)))
		}
		return grads, slices.Clone((*read).Data().([]float32)), p
	}

	wantGrads, wantOut, _ := run(false, 1)
	gotGrads, gotOut, plan := run(true, 3)
	for i := range wantGrads {
		if !slices.Equal(gotGrads[i], wantGrads[i]) {
			t.Errorf("gradient of weight %d differs under the buffer plan", i)
		}
	}
	if !slices.Equal(gotOut, wantOut) {
		t.Error("the read output differs under the buffer plan")
	}
	if plan.Pooled == 0 {
		t.Fatal("the plan pools no output")
	}
	if plan.Allocated() >= plan.Pooled {
		t.Errorf("the pool made %d tensors for %d pooled outputs, want fewer", plan.Allocated(), plan.Pooled)
	}
	t.Logf("%d pooled outputs share %d tensors", plan.Pooled, plan.Allocated())
}
