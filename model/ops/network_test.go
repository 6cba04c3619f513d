package ops

import (
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// smallGenerator builds a miniature CycleGAN generator (reflect-padded 7×7 convolution, stride-2
// convolution, residual block, transposed convolution, instance norms) on x and returns the
// cost and the gradients of every weight.
func smallGenerator(t *testing.T, g *gorgonia.ExprGraph, x *gorgonia.Node, weights map[string]*tensor.Dense) (*gorgonia.Node, gorgonia.Nodes, []string) {
	t.Helper()
	names := []string{"c1", "c2", "r1", "r2", "up", "out", "outb"}
	nodes := map[string]*gorgonia.Node{}
	var wrt gorgonia.Nodes
	for _, name := range names {
		v := weights[name]
		n := gorgonia.NewTensor(g, v.Dtype(), v.Dims(), gorgonia.WithShape(v.Shape()...), gorgonia.WithValue(v), gorgonia.WithName(name))
		nodes[name] = n
		wrt = append(wrt, n)
	}
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	h := must(Conv2dReflect(x, nodes["c1"], nil, 1, 3))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(Conv2d(h, nodes["c2"], nil, 2, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	r := must(Conv2dReflect(h, nodes["r1"], nil, 1, 1))
	r = must(InstanceNorm(r, 1e-5, ReLU()))
	p := must(ReflectionPad2d(r, 1))
	r = must(Conv2d(p, nodes["r2"], nil, 1, 0))
	r = must(InstanceNorm(r, 1e-5, Activation{}))
	h = must(gorgonia.Add(h, r))
	h = must(ConvTranspose2d(h, nodes["up"], nil, 2, 1, 1))
	h = must(InstanceNorm(h, 1e-5, ReLU()))
	h = must(Conv2dReflect(h, nodes["out"], nodes["outb"], 1, 3))
	h = must(gorgonia.Tanh(h))
	flat := must(gorgonia.Reshape(h, tensor.Shape{h.Shape().TotalSize()}))
	cost := must(gorgonia.Mean(must(gorgonia.Square(flat))))
	grads, err := gorgonia.Grad(cost, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	return cost, grads, names
}

func smallGeneratorWeights(rng *rand.Rand, dt tensor.Dtype) map[string]*tensor.Dense {
	return map[string]*tensor.Dense{
		"c1":   randomTensor(rng, dt, 4, 3, 7, 7),
		"c2":   randomTensor(rng, dt, 8, 4, 3, 3),
		"r1":   randomTensor(rng, dt, 8, 8, 3, 3),
		"r2":   randomTensor(rng, dt, 8, 8, 3, 3),
		"up":   randomTensor(rng, dt, 8, 4, 3, 3),
		"out":  randomTensor(rng, dt, 3, 4, 7, 7),
		"outb": randomTensor(rng, dt, 3),
	}
}

// TestNetworkReusedMachineMatchesFresh runs one machine on two inputs and checks that the
// second run, which reuses every op's buffers, gives what a fresh graph gives.
func TestNetworkReusedMachineMatchesFresh(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(51, 52))
			weights := smallGeneratorWeights(rng, dt)
			inputs := []*tensor.Dense{randomTensor(rng, dt, 1, 3, 12, 10), randomTensor(rng, dt, 1, 3, 12, 10)}

			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, dt, 4, gorgonia.WithShape(1, 3, 12, 10), gorgonia.WithName("x"))
			cost, grads, names := smallGenerator(t, g, x, weights)
			vm := gorgonia.NewTapeMachine(g.ExactSubgraphRoots(append(gorgonia.Nodes{cost}, grads...)...))
			defer vm.Close()
			var reusedCost []float64
			var reusedGrads [][]float64
			for _, in := range inputs {
				if err := gorgonia.Let(x, in); err != nil {
					t.Fatal(err)
				}
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				reusedCost = float64s(t, cost.Value())
				reusedGrads = reusedGrads[:0]
				for _, gr := range grads {
					reusedGrads = append(reusedGrads, float64s(t, gr.Value()))
				}
			}

			fresh := gorgonia.NewGraph()
			fx := gorgonia.NewTensor(fresh, dt, 4, gorgonia.WithShape(1, 3, 12, 10), gorgonia.WithValue(inputs[1]), gorgonia.WithName("x"))
			freshCost, freshGrads, _ := smallGenerator(t, fresh, fx, weights)
			fvm := gorgonia.NewTapeMachine(fresh)
			defer fvm.Close()
			if err := fvm.RunAll(); err != nil {
				t.Fatal(err)
			}
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-6
			}
			assertClose(t, "cost", reusedCost, float64s(t, freshCost.Value()), tol)
			for i, name := range names {
				assertClose(t, "gradient of "+name, reusedGrads[i], float64s(t, freshGrads[i].Value()), tol)
			}
		})
	}
}
