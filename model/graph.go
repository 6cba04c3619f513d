package model

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gocyclegan/cyclegan/model/ops"
)

// graphBuilder adds networks, losses and inputs to one expression graph.
// Weight nodes wrap the tensors of a weightSet, so every use of a network
// in the graph shares its weights. A weight the graph does not train has
// one node. A trained weight has one node per use, and the convolutions add
// their gradients into the weight's tensor in grads, so gorgonia builds no
// sum of the uses' gradients (see ops.GradSink).
type graphBuilder struct {
	g       *gorgonia.ExprGraph
	weights *weightSet
	nodes   map[string]*gorgonia.Node
	grads   *gradientSet   // nil for a graph that trains nothing
	uses    gorgonia.Nodes // every node of a trained weight, in creation order
	count   map[string]int // nodes made so far per trained weight
}

func newGraphBuilder(weights *weightSet) *graphBuilder {
	return &graphBuilder{g: gorgonia.NewGraph(), weights: weights, nodes: map[string]*gorgonia.Node{}, count: map[string]int{}}
}

// weight returns the node wrapping the named weight tensor.
func (b *graphBuilder) weight(name string) *gorgonia.Node {
	if n, ok := b.nodes[name]; ok {
		return n
	}
	n := b.newWeightNode(name, name)
	b.nodes[name] = n
	return n
}

// weightUse returns a new node wrapping the named trained weight and records it in b.uses.
func (b *graphBuilder) weightUse(name string) *gorgonia.Node {
	b.count[name]++
	n := b.newWeightNode(name, fmt.Sprintf("%s#%d", name, b.count[name]))
	b.uses = append(b.uses, n)
	return n
}

func (b *graphBuilder) newWeightNode(name, nodeName string) *gorgonia.Node {
	value := b.weights.values[name]
	return gorgonia.NewTensor(b.g, tensor.Float32, value.Dims(),
		gorgonia.WithShape(value.Shape()...), gorgonia.WithName(nodeName), gorgonia.WithValue(value))
}

// gradients differentiates cost with respect to every use of a trained
// weight and returns the gradient nodes, which the machine must run; their
// values are the tensors of b.grads.
func (b *graphBuilder) gradients(cost *gorgonia.Node) (gorgonia.Nodes, error) {
	for _, name := range b.grads.names {
		if b.count[name] == 0 {
			return nil, fmt.Errorf("trained weight %s is not used in the graph", name)
		}
	}
	return gorgonia.Grad(cost, b.uses...)
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
	var blockInput, blockConv *gorgonia.Node
	var err error
	for _, l := range networkLayers(cfg, network) {
		var conv *gorgonia.Node
		if l.blockStart {
			blockInput = x
		}
		if x, conv, err = b.layer(network, l, x); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", network, l.key, err)
		}
		if l.blockStart {
			blockConv = conv
		}
		if l.blockFinish {
			if x, err = ops.ResidualAdd(blockInput, x, blockConv); err != nil {
				return nil, fmt.Errorf("%s.%s residual sum: %w", network, l.key, err)
			}
		}
	}
	return x, nil
}

// layer applies one convolution with its padding, norm and activation. It
// returns the layer's output and the convolution's node.
func (b *graphBuilder) layer(network string, l convLayer, x *gorgonia.Node) (out, conv *gorgonia.Node, err error) {
	prefix := network + "." + l.key
	var w, bias *gorgonia.Node
	var opts []ops.Option
	if sink := b.grads.sink(prefix); sink != nil {
		w, bias = b.weightUse(prefix+".weight"), b.weightUse(prefix+".bias")
		opts = append(opts, ops.WithGradSink(sink))
	} else {
		w, bias = b.weight(prefix+".weight"), b.weight(prefix+".bias")
	}
	switch {
	case l.transposed:
		conv, err = ops.ConvTranspose2d(x, w, bias, l.stride, l.zeroPad, l.outputPad, opts...)
	case l.reflectPad > 0:
		// Every reflection-padded layer has no zero padding, so the fused
		// op (reflection padding, then convolution) covers it.
		conv, err = ops.Conv2dReflect(x, w, bias, l.stride, l.reflectPad, opts...)
	default:
		conv, err = ops.Conv2d(x, w, bias, l.stride, l.zeroPad, opts...)
	}
	if err != nil {
		return nil, nil, err
	}
	switch l.after {
	case afterNorm:
		out, err = ops.InstanceNorm(conv, instanceNormEps, ops.Activation{})
	case afterNormReLU:
		out, err = ops.InstanceNorm(conv, instanceNormEps, ops.ReLU())
	case afterNormLeakyReLU:
		out, err = ops.InstanceNorm(conv, instanceNormEps, ops.LeakyReLU(leakySlope))
	case afterLeakyReLU:
		out, err = ops.Activate(conv, ops.LeakyReLU(leakySlope))
	case afterTanh:
		out, err = ops.Tanh(conv)
	default:
		out = conv
	}
	return out, conv, err
}

// constant returns a float32 scalar constant.
func constant(v float64) *gorgonia.Node { return gorgonia.NewConstant(float32(v)) }

// l1 returns mean |a − b|.
func l1(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	return ops.MeanAbsoluteError(a, b)
}

// ganLoss returns the GAN loss of discriminator logits against an all-real
// (target 1) or all-fake (target 0) label: mean (x − target)² for LSGAN,
// binary cross-entropy on logits for vanilla.
func ganLoss(mode string, logits *gorgonia.Node, real bool) (*gorgonia.Node, error) {
	if mode == GANLeastSquares {
		target := 0.0
		if real {
			target = 1
		}
		return ops.MeanSquaredError(logits, target)
	}
	return ops.BinaryCrossEntropyWithLogits(logits, real)
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
