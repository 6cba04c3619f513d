package model

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gocyclegan/cyclegan/model/ops"
)

// graphBuilder adds networks, losses and inputs to one expression graph.
// Weight nodes wrap the tensors of a weightSet, one node per weight and
// graph, so every use of a network in the graph shares its weights.
type graphBuilder struct {
	g       *gorgonia.ExprGraph
	weights *weightSet
	nodes   map[string]*gorgonia.Node
}

func newGraphBuilder(weights *weightSet) *graphBuilder {
	return &graphBuilder{g: gorgonia.NewGraph(), weights: weights, nodes: map[string]*gorgonia.Node{}}
}

// weight returns the node wrapping the named weight tensor.
func (b *graphBuilder) weight(name string) *gorgonia.Node {
	if n, ok := b.nodes[name]; ok {
		return n
	}
	value := b.weights.values[name]
	n := gorgonia.NewTensor(b.g, tensor.Float32, value.Dims(),
		gorgonia.WithShape(value.Shape()...), gorgonia.WithName(name), gorgonia.WithValue(value))
	b.nodes[name] = n
	return n
}

// weightNodes returns the nodes of the named weights, creating them if needed.
func (b *graphBuilder) weightNodes(names []string) gorgonia.Nodes {
	nodes := make(gorgonia.Nodes, len(names))
	for i, name := range names {
		nodes[i] = b.weight(name)
	}
	return nodes
}

// input adds an input node of the given shape wrapping a new zero tensor,
// which the caller fills before each run.
func (b *graphBuilder) input(name string, shape ...int) (*gorgonia.Node, []float32) {
	data := make([]float32, shapeSize(shape))
	value := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	n := gorgonia.NewTensor(b.g, tensor.Float32, len(shape),
		gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(value))
	return n, data
}

// network applies the named network (G_A, G_B, D_A or D_B) to x.
func (b *graphBuilder) network(cfg Config, network string, x *gorgonia.Node) (*gorgonia.Node, error) {
	var blockInput *gorgonia.Node
	var err error
	for _, l := range networkLayers(cfg, network) {
		if l.blockStart {
			blockInput = x
		}
		if x, err = b.layer(network, l, x); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", network, l.key, err)
		}
		if l.blockFinish {
			if x, err = gorgonia.Add(blockInput, x); err != nil {
				return nil, fmt.Errorf("%s.%s residual sum: %w", network, l.key, err)
			}
		}
	}
	return x, nil
}

// layer applies one convolution with its padding, norm and activation.
func (b *graphBuilder) layer(network string, l convLayer, x *gorgonia.Node) (*gorgonia.Node, error) {
	w := b.weight(network + "." + l.key + ".weight")
	bias := b.weight(network + "." + l.key + ".bias")
	var err error
	switch {
	case l.transposed:
		x, err = ops.ConvTranspose2d(x, w, bias, l.stride, l.zeroPad, l.outputPad)
	case l.reflectPad > 0:
		// Every reflection-padded layer has no zero padding, so the fused
		// op (reflection padding, then convolution) covers it.
		x, err = ops.Conv2dReflect(x, w, bias, l.stride, l.reflectPad)
	default:
		x, err = ops.Conv2d(x, w, bias, l.stride, l.zeroPad)
	}
	if err != nil {
		return nil, err
	}
	switch l.after {
	case afterNorm:
		return ops.InstanceNorm(x, instanceNormEps, ops.Activation{})
	case afterNormReLU:
		return ops.InstanceNorm(x, instanceNormEps, ops.ReLU())
	case afterNormLeakyReLU:
		return ops.InstanceNorm(x, instanceNormEps, ops.LeakyReLU(leakySlope))
	case afterLeakyReLU:
		return gorgonia.LeakyRelu(x, leakySlope)
	case afterTanh:
		return gorgonia.Tanh(x)
	default:
		return x, nil
	}
}

// constant returns a float32 scalar constant.
func constant(v float64) *gorgonia.Node { return gorgonia.NewConstant(float32(v)) }

// meanAll returns the mean of every element of x. It flattens x first,
// because gorgonia v0.9.18 reduces wrongly over several axes of a 4-D
// tensor at once.
func meanAll(x *gorgonia.Node) (*gorgonia.Node, error) {
	flat, err := gorgonia.Reshape(x, tensor.Shape{x.Shape().TotalSize()})
	if err != nil {
		return nil, err
	}
	return gorgonia.Mean(flat)
}

// l1 returns mean |a − b|.
func l1(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	diff, err := gorgonia.Sub(a, b)
	if err != nil {
		return nil, err
	}
	abs, err := gorgonia.Abs(diff)
	if err != nil {
		return nil, err
	}
	return meanAll(abs)
}

// ganLoss returns the GAN loss of discriminator logits against an all-real
// (target 1) or all-fake (target 0) label.
//
// LSGAN is mean (x − target)². Vanilla is binary cross-entropy on logits
// in the overflow-free form: with target 1 it is softplus(−x), with target
// 0 softplus(x), and softplus(z) = max(z, 0) + log(1 + exp(−|z|)).
func ganLoss(mode string, logits *gorgonia.Node, real bool) (*gorgonia.Node, error) {
	if mode == GANLeastSquares {
		x := logits
		if real {
			var err error
			if x, err = gorgonia.Sub(logits, constant(1)); err != nil {
				return nil, err
			}
		}
		squared, err := gorgonia.Square(x)
		if err != nil {
			return nil, err
		}
		return meanAll(squared)
	}

	z := logits
	var err error
	if real {
		if z, err = gorgonia.Neg(logits); err != nil {
			return nil, err
		}
	}
	positive, err := gorgonia.Rectify(z)
	if err != nil {
		return nil, err
	}
	abs, err := gorgonia.Abs(z)
	if err != nil {
		return nil, err
	}
	negAbs, err := gorgonia.Neg(abs)
	if err != nil {
		return nil, err
	}
	exp, err := gorgonia.Exp(negAbs)
	if err != nil {
		return nil, err
	}
	log1p, err := gorgonia.Log1p(exp)
	if err != nil {
		return nil, err
	}
	softplus, err := gorgonia.Add(positive, log1p)
	if err != nil {
		return nil, err
	}
	return meanAll(softplus)
}

// scale returns v·x for a scalar x.
func scale(x *gorgonia.Node, v float64) (*gorgonia.Node, error) {
	return gorgonia.Mul(x, constant(v))
}

// sum returns the sum of scalar nodes.
func sum(nodes ...*gorgonia.Node) (*gorgonia.Node, error) {
	total := nodes[0]
	for _, n := range nodes[1:] {
		var err error
		if total, err = gorgonia.Add(total, n); err != nil {
			return nil, err
		}
	}
	return total, nil
}
