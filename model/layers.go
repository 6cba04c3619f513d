package model

import "fmt"

// Network names, used as checkpoint key prefixes.
const (
	netGA = "G_A" // generator A→B
	netGB = "G_B" // generator B→A
	netDA = "D_A" // discriminator of domain B images
	netDB = "D_B" // discriminator of domain A images
)

var networkNames = []string{netGA, netGB, netDA, netDB}

// after is what follows a convolution.
type after int

const (
	afterNone          after = iota // nothing: the discriminator's output logits
	afterNorm                       // instance norm
	afterNormReLU                   // instance norm, ReLU
	afterNormLeakyReLU              // instance norm, LeakyReLU(0.2)
	afterLeakyReLU                  // LeakyReLU(0.2), no norm
	afterTanh                       // tanh: the generator's output
)

// leakySlope is the negative slope of the discriminators' LeakyReLU.
const leakySlope = 0.2

// instanceNormEps is added to the variance in instance norm, as in PyTorch's
// InstanceNorm2d.
const instanceNormEps = 1e-5

// convLayer is one convolution of a network with what surrounds it. Its
// key is the layer's state-dict prefix in the reference PyTorch model (an
// nn.Sequential named `model`, whose indices also count the padding, norm
// and activation modules), so weights are named key+".weight" and
// key+".bias".
type convLayer struct {
	key         string
	transposed  bool // ConvTranspose2d, whose weight is [in, out, k, k]
	in, out     int  // channels
	kernel      int
	stride      int
	zeroPad     int // convolution padding (for a transposed one, PyTorch's padding)
	outputPad   int // transposed only
	reflectPad  int // reflection padding applied before the convolution
	after       after
	blockStart  bool // the layer's input is the input of a residual block
	blockFinish bool // the residual block's input is added to the layer's output
}

func (l convLayer) weightShape() []int {
	if l.transposed {
		return []int{l.in, l.out, l.kernel, l.kernel}
	}
	return []int{l.out, l.in, l.kernel, l.kernel}
}

// generatorLayers lists the ResNet generator's convolutions: a 7×7
// convolution after reflection padding 3, two stride-2 down-samplings,
// `blocks` residual blocks at 4·ngf channels, two stride-2 transposed
// convolutions, and a 7×7 convolution to RGB with tanh. Every convolution
// has a bias.
func generatorLayers(ngf, blocks int) []convLayer {
	layers := []convLayer{
		{key: "model.1", in: 3, out: ngf, kernel: 7, stride: 1, reflectPad: 3, after: afterNormReLU},
		{key: "model.4", in: ngf, out: 2 * ngf, kernel: 3, stride: 2, zeroPad: 1, after: afterNormReLU},
		{key: "model.7", in: 2 * ngf, out: 4 * ngf, kernel: 3, stride: 2, zeroPad: 1, after: afterNormReLU},
	}
	c := 4 * ngf
	// Sequential indices: 0 pad, 1 conv, 2 norm, 3 relu, then 4–6 and 7–9
	// for the down-samplings, one index per residual block from 10.
	for b := range blocks {
		block := fmt.Sprintf("model.%d.conv_block", 10+b)
		layers = append(layers,
			// conv_block: 0 pad, 1 conv, 2 norm, 3 relu, 4 pad, 5 conv, 6 norm.
			convLayer{key: block + ".1", in: c, out: c, kernel: 3, stride: 1, reflectPad: 1, after: afterNormReLU, blockStart: true},
			convLayer{key: block + ".5", in: c, out: c, kernel: 3, stride: 1, reflectPad: 1, after: afterNorm, blockFinish: true},
		)
	}
	up := 10 + blocks // each up-sampling is conv, norm, relu
	layers = append(layers,
		convLayer{key: fmt.Sprintf("model.%d", up), transposed: true, in: c, out: c / 2, kernel: 3, stride: 2, zeroPad: 1, outputPad: 1, after: afterNormReLU},
		convLayer{key: fmt.Sprintf("model.%d", up+3), transposed: true, in: c / 2, out: c / 4, kernel: 3, stride: 2, zeroPad: 1, outputPad: 1, after: afterNormReLU},
		// up+6 is the reflection padding.
		convLayer{key: fmt.Sprintf("model.%d", up+7), in: ngf, out: 3, kernel: 7, stride: 1, reflectPad: 3, after: afterTanh},
	)
	return layers
}

// discriminatorLayers lists the 70×70 PatchGAN's convolutions, all 4×4
// with padding 1: three with stride 2 (ndf, 2·ndf, 4·ndf channels, the
// first without norm), one with stride 1 to 8·ndf, and a stride-1
// convolution to one logit per patch. Indices count the norm and
// LeakyReLU modules between them.
func discriminatorLayers(ndf int) []convLayer {
	return []convLayer{
		{key: "model.0", in: 3, out: ndf, kernel: 4, stride: 2, zeroPad: 1, after: afterLeakyReLU},
		{key: "model.2", in: ndf, out: 2 * ndf, kernel: 4, stride: 2, zeroPad: 1, after: afterNormLeakyReLU},
		{key: "model.5", in: 2 * ndf, out: 4 * ndf, kernel: 4, stride: 2, zeroPad: 1, after: afterNormLeakyReLU},
		{key: "model.8", in: 4 * ndf, out: 8 * ndf, kernel: 4, stride: 1, zeroPad: 1, after: afterNormLeakyReLU},
		{key: "model.11", in: 8 * ndf, out: 1, kernel: 4, stride: 1, zeroPad: 1, after: afterNone},
	}
}

// networkLayers returns the layers of the named network under cfg.
func networkLayers(cfg Config, network string) []convLayer {
	if network == netGA || network == netGB {
		return generatorLayers(cfg.NGF, cfg.Blocks)
	}
	return discriminatorLayers(cfg.NDF)
}

// weightSpec is one learnable tensor.
type weightSpec struct {
	name  string // checkpoint name, e.g. "G_A.model.1.weight"
	shape []int
}

// networkWeights lists a network's weights and biases in layer order.
func networkWeights(cfg Config, network string) []weightSpec {
	var specs []weightSpec
	for _, l := range networkLayers(cfg, network) {
		prefix := network + "." + l.key
		specs = append(specs,
			weightSpec{prefix + ".weight", l.weightShape()},
			weightSpec{prefix + ".bias", []int{l.out}},
		)
	}
	return specs
}

// discriminatorSide returns the side of a PatchGAN output map for an input
// side: ⌊side/8⌋ − 2 after three halvings and two 4×4 stride-1
// convolutions with padding 1.
func discriminatorSide(side int) int { return side/2/2/2 - 2 }
