package ops

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// sinkCase is a convolution applied twice with one weight: to x and to the output of the
// first application passed through a second, fixed convolution, so the two uses see
// different inputs and different output gradients.
type sinkCase struct {
	name      string
	transpose bool
	x         []int // input shape
	w         []int // weight shape
	stride    int
	pad       int
	outPad    int
	reflect   bool
}

func (c sinkCase) apply(x, w, b *gorgonia.Node, opts ...Option) (*gorgonia.Node, error) {
	switch {
	case c.transpose:
		return ConvTranspose2d(x, w, b, c.stride, c.pad, c.outPad, opts...)
	case c.reflect:
		return Conv2dReflect(x, w, b, c.stride, c.pad, opts...)
	default:
		return Conv2d(x, w, b, c.stride, c.pad, opts...)
	}
}

// TestGradSinkMatchesSummedGradients checks that the sink of a weight used twice, each use on
// its own node, holds what gorgonia computes for one node used twice, and that zeroing it
// before a second run gives the same sum again.
func TestGradSinkMatchesSummedGradients(t *testing.T) {
	cases := []sinkCase{
		{name: "implicit stride 2", x: []int{2, 4, 9, 9}, w: []int{4, 4, 3, 3}, stride: 2, pad: 1},
		{name: "kn2row stride 1", x: []int{1, 3, 8, 8}, w: []int{3, 3, 3, 3}, stride: 1, pad: 1},
		{name: "reflect 7x7", x: []int{1, 2, 10, 10}, w: []int{2, 2, 7, 7}, stride: 1, pad: 3, reflect: true},
		{name: "transposed", transpose: true, x: []int{1, 3, 5, 5}, w: []int{3, 3, 3, 3}, stride: 2, pad: 1, outPad: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			x := randomTensor(rng, tensor.Float64, tc.x...)
			w := randomTensor(rng, tensor.Float64, tc.w...)
			channels := tc.w[0]
			if tc.transpose {
				channels = tc.w[1]
			}
			b := randomTensor(rng, tensor.Float64, channels)
			mix := randomTensor(rng, tensor.Float64, channels, channels, 1, 1)

			// build applies the convolution twice; wNodes and bNodes return the weight and bias
			// nodes of each use.
			build := func(wNodes, bNodes func(g *gorgonia.ExprGraph, use int) *gorgonia.Node, opts ...Option) (*gorgonia.ExprGraph, gorgonia.Nodes, error) {
				g := gorgonia.NewGraph()
				xn := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(tc.x...), gorgonia.WithValue(x), gorgonia.WithName("x"))
				mn := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(channels, channels, 1, 1), gorgonia.WithValue(mix), gorgonia.WithName("mix"))
				w1, b1 := wNodes(g, 1), bNodes(g, 1)
				y1, err := tc.apply(xn, w1, b1, opts...)
				if err != nil {
					return nil, nil, err
				}
				// A 1×1 convolution mixes the channels; for the transposed case its stride 2
				// also brings the map back to the input's size for the second use.
				mixStride := 1
				if tc.transpose {
					mixStride = 2
				}
				mixed, err := Conv2d(y1, mn, nil, mixStride, 0)
				if err != nil {
					return nil, nil, err
				}
				w2, b2 := wNodes(g, 2), bNodes(g, 2)
				y2, err := tc.apply(mixed, w2, b2, opts...)
				if err != nil {
					return nil, nil, err
				}
				sq, err := gorgonia.Square(y2)
				if err != nil {
					return nil, nil, err
				}
				flat, err := gorgonia.Reshape(sq, tensor.Shape{sq.Shape().TotalSize()})
				if err != nil {
					return nil, nil, err
				}
				cost, err := gorgonia.Sum(flat)
				if err != nil {
					return nil, nil, err
				}
				wrt := gorgonia.Nodes{w1, b1}
				if w2 != w1 {
					wrt = append(wrt, w2, b2)
				}
				grads, err := gorgonia.Grad(cost, wrt...)
				return g, grads, err
			}
			run := func(g *gorgonia.ExprGraph, roots gorgonia.Nodes) {
				vm := gorgonia.NewTapeMachine(g.ExactSubgraphRoots(roots...))
				defer vm.Close()
				if err := vm.RunAll(); err != nil {
					t.Fatalf("run: %v", err)
				}
			}

			// Reference: one weight node and one bias node, each used twice.
			var sharedW, sharedB *gorgonia.Node
			g, grads, err := build(
				func(g *gorgonia.ExprGraph, _ int) *gorgonia.Node {
					if sharedW == nil {
						sharedW = gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(tc.w...), gorgonia.WithValue(w), gorgonia.WithName("w"))
					}
					return sharedW
				},
				func(g *gorgonia.ExprGraph, _ int) *gorgonia.Node {
					if sharedB == nil {
						sharedB = gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(channels), gorgonia.WithValue(b), gorgonia.WithName("b"))
					}
					return sharedB
				})
			if err != nil {
				t.Fatal(err)
			}
			run(g, grads)
			wantW, wantB := float64s(t, grads[0].Value()), float64s(t, grads[1].Value())

			sinkW := tensor.New(tensor.WithShape(tc.w...), tensor.Of(tensor.Float64))
			sinkB := tensor.New(tensor.WithShape(channels), tensor.Of(tensor.Float64))
			sink, err := NewGradSink(sinkW, sinkB)
			if err != nil {
				t.Fatal(err)
			}
			g, grads, err = build(
				func(g *gorgonia.ExprGraph, use int) *gorgonia.Node {
					return gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(tc.w...), gorgonia.WithValue(w), gorgonia.WithName("w"+string(rune('0'+use))))
				},
				func(g *gorgonia.ExprGraph, use int) *gorgonia.Node {
					return gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(channels), gorgonia.WithValue(b), gorgonia.WithName("b"+string(rune('0'+use))))
				},
				WithGradSink(sink))
			if err != nil {
				t.Fatal(err)
			}
			vm := gorgonia.NewTapeMachine(g.ExactSubgraphRoots(grads...))
			defer vm.Close()
			for run := range 2 {
				sink.Zero()
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				for i, gr := range grads {
					want := sinkW
					if i%2 == 1 {
						want = sinkB
					}
					if gr.Value() != gorgonia.Value(want) {
						t.Fatalf("run %d: gradient node %d holds %p, want the sink tensor %p", run, i, gr.Value(), want)
					}
				}
				assertClose(t, "weight gradient", float64s(t, sinkW), wantW, 1e-12)
				assertClose(t, "bias gradient", float64s(t, sinkB), wantB, 1e-12)
			}
		})
	}
}

func TestGradSinkRejectsMismatches(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(1, 2, 6, 6), gorgonia.WithName("x"))
	w := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(3, 2, 3, 3), gorgonia.WithName("w"))
	b := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(3), gorgonia.WithName("b"))
	sink := func(dt tensor.Dtype, ws []int, bias bool) *GradSink {
		var bt *tensor.Dense
		if bias {
			bt = tensor.New(tensor.WithShape(3), tensor.Of(dt))
		}
		s, err := NewGradSink(tensor.New(tensor.WithShape(ws...), tensor.Of(dt)), bt)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		sink *GradSink
		bias *gorgonia.Node
		want error
	}{
		{"weight shape", sink(tensor.Float32, []int{3, 2, 5, 5}, true), b, ErrInvalidShape},
		{"dtype", sink(tensor.Float64, []int{3, 2, 3, 3}, true), b, ErrInvalidDtype},
		{"bias missing from sink", sink(tensor.Float32, []int{3, 2, 3, 3}, false), b, ErrInvalidArgument},
		{"bias missing from op", sink(tensor.Float32, []int{3, 2, 3, 3}, true), nil, ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Conv2d(x, w, tc.bias, 1, 1, WithGradSink(tc.sink)); !errors.Is(err, tc.want) {
				t.Errorf("Conv2d error = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewGradSink(nil, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NewGradSink(nil) error = %v, want ErrInvalidArgument", err)
	}
	if _, err := NewGradSink(tensor.New(tensor.WithShape(2), tensor.Of(tensor.Int)), nil); !errors.Is(err, ErrInvalidDtype) {
		t.Errorf("NewGradSink(int) error = %v, want ErrInvalidDtype", err)
	}
}
