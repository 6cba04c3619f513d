package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2d applies a 2-D convolution with zero padding: x [N, Cin, H, W], w [Cout, Cin, K, K],
// b [Cout] or nil; the output is [N, Cout, Ho, Wo] with Ho = (H + 2·pad − K)/stride + 1.
func Conv2d(x, w, b *gorgonia.Node, stride, pad int, opts ...Option) (*gorgonia.Node, error) {
	return conv2d("Conv2d", x, w, b, stride, pad, false, opts)
}

// Conv2dReflect is Conv2d on the input padded by reflection (as PyTorch's ReflectionPad2d
// followed by Conv2d without padding), without building the padded tensor. pad must be
// smaller than H and W.
func Conv2dReflect(x, w, b *gorgonia.Node, stride, pad int, opts ...Option) (*gorgonia.Node, error) {
	return conv2d("Conv2dReflect", x, w, b, stride, pad, true, opts)
}

func conv2d(name string, x, w, b *gorgonia.Node, stride, pad int, reflect bool, opts []Option) (*gorgonia.Node, error) {
	if x == nil || w == nil {
		return nil, fmt.Errorf("%w: %s: input and weight must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x, w, b); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	ws, err := shape4(name, "weight", w)
	if err != nil {
		return nil, err
	}
	if ws[1] != xs[1] || ws[2] != ws[3] {
		return nil, fmt.Errorf("%w: %s: weight %v does not fit input %v, want [Cout, %d, K, K]", ErrInvalidShape, name, ws, xs, xs[1])
	}
	if err := checkBias(name, b, ws[0]); err != nil {
		return nil, err
	}
	sink, err := optionSink(name, opts, w, ws, b != nil, ws[0])
	if err != nil {
		return nil, err
	}
	g, err := newConvGeom(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], stride, pad, reflect)
	if err != nil {
		return nil, fmt.Errorf("%s of input %v with weight %v: %w", name, xs, ws, err)
	}
	op := newConv2dOp(name, g, b != nil, graphArena(x))
	op.grads = newUse(sink)
	if b == nil {
		return gorgonia.ApplyOp(op, x, w)
	}
	return gorgonia.ApplyOp(op, x, w, b)
}

func checkBias(name string, b *gorgonia.Node, channels int) error {
	if b == nil {
		return nil
	}
	if s := b.Shape(); len(s) != 1 || s[0] != channels {
		return fmt.Errorf("%w: %s: bias %s has shape %v, want (%d)", ErrInvalidShape, name, b.Name(), s, channels)
	}
	return nil
}

// optionSink returns the gradient sink among opts, checked against the weight node w of shape
// ws and the bias, or nil.
func optionSink(name string, opts []Option, w *gorgonia.Node, ws tensor.Shape, hasBias bool, biasLen int) (*GradSink, error) {
	o := buildOptions(opts)
	if o.sink == nil {
		return nil, nil
	}
	if err := o.sink.check(name, w.Dtype(), ws, hasBias, biasLen); err != nil {
		return nil, err
	}
	return o.sink, nil
}

// conv2dOp computes conv(x, w) + b. Inputs: x, w and, with hasBias, b.
type conv2dOp struct {
	opBase
	g       convGeom
	hasBias bool
	out     outputBuffer
	scratch *convScratch
	grads   sinkUse // destination of the weight and bias gradients; the zero value means the op's own buffers
	// residual is the sum node of the residual block that this convolution starts (see
	// ResidualAdd). The input-gradient op adds that node's gradient. It is nil outside a block.
	residual *gorgonia.Node
}

func newConv2dOp(name string, g convGeom, hasBias bool, arena *convScratch) *conv2dOp {
	return &conv2dOp{opBase: opBase{desc: fmt.Sprintf("%s{%v bias=%t}", name, g, hasBias)}, g: g, hasBias: hasBias, scratch: arena}
}

func (op *conv2dOp) Arity() int {
	if op.hasBias {
		return 3
	}
	return 2
}

func (op *conv2dOp) Type() hm.Type {
	if op.hasBias {
		return fnType(4, 4, 1, 4)
	}
	return fnType(4, 4, 4)
}

func (op *conv2dOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.g.outShape(), nil
}

func (op *conv2dOp) outputShape() tensor.Shape { return op.g.outShape() }

func (op *conv2dOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *conv2dOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *conv2dOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runConv2d[float32](op, out, inputs)
	}
	return runConv2d[float64](op, out, inputs)
}

func runConv2d[T float](op *conv2dOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	x, err := inputData[T](op, inputs, 0, op.g.inShape())
	if err != nil {
		return err
	}
	w, err := inputData[T](op, inputs, 1, op.g.weightShape())
	if err != nil {
		return err
	}
	var b []T
	if op.hasBias {
		if b, err = inputData[T](op, inputs, 2, tensor.Shape{op.g.cout}); err != nil {
			return err
		}
	}
	return convForward(&op.g, op.scratch, x, w, b, outputData[T](out))
}

func (op *conv2dOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

func (op *conv2dOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want %d", ErrInvalidArgument, op, len(inputs), op.Arity())
	}
	x, w := inputs[0], inputs[1]
	var dx *gorgonia.Node
	var err error
	if r := op.residualGrad(); r != nil {
		dataOp := newConvDataOp("Conv2dGradInput", op.g, false, op.scratch)
		dataOp.addInput = true
		dataOp.desc += " + residual gradient"
		dx, err = gorgonia.ApplyOp(dataOp, grad, w, r)
	} else {
		dx, err = gorgonia.ApplyOp(newConvDataOp("Conv2dGradInput", op.g, false, op.scratch), grad, w)
	}
	if err != nil {
		return nil, err
	}
	dw, err := gorgonia.ApplyOp(newConvFilterOp(op.g, op.scratch, op.grads), x, grad)
	if err != nil {
		return nil, err
	}
	grads := gorgonia.Nodes{dx, dw}
	if op.hasBias {
		db, err := gorgonia.ApplyOp(newBiasGradOp(op.g.outShape(), op.grads), grad)
		if err != nil {
			return nil, err
		}
		grads = append(grads, db)
	}
	return grads, nil
}

// convDataOp computes the gradient of a convolution with respect to its input, which is also
// the transposed convolution: inputs dy (shaped as the convolution's output), w and, with
// hasBias, a bias added per channel of the result. With addInput (never together with a bias)
// a third input shaped as the result is added to it: the gradient a residual block's sum
// passes to the block's input.
type convDataOp struct {
	opBase
	g        convGeom
	hasBias  bool
	addInput bool
	out      outputBuffer
	scratch  *convScratch
	grads    sinkUse // as conv2dOp's, for the transposed convolution
}

func newConvDataOp(name string, g convGeom, hasBias bool, arena *convScratch) *convDataOp {
	return &convDataOp{opBase: opBase{desc: fmt.Sprintf("%s{%v bias=%t}", name, g, hasBias)}, g: g, hasBias: hasBias, scratch: arena}
}

func (op *convDataOp) Arity() int {
	if op.hasBias || op.addInput {
		return 3
	}
	return 2
}

func (op *convDataOp) Type() hm.Type {
	switch {
	case op.hasBias:
		return fnType(4, 4, 1, 4)
	case op.addInput:
		return fnType(4, 4, 4, 4)
	}
	return fnType(4, 4, 4)
}

func (op *convDataOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.g.inShape(), nil
}

func (op *convDataOp) outputShape() tensor.Shape { return op.g.inShape() }

func (op *convDataOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *convDataOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *convDataOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runConvData[float32](op, out, inputs)
	}
	return runConvData[float64](op, out, inputs)
}

func runConvData[T float](op *convDataOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	dy, err := inputData[T](op, inputs, 0, op.g.outShape())
	if err != nil {
		return err
	}
	w, err := inputData[T](op, inputs, 1, op.g.weightShape())
	if err != nil {
		return err
	}
	var b, plus []T
	if op.hasBias {
		if b, err = inputData[T](op, inputs, 2, tensor.Shape{op.g.cin}); err != nil {
			return err
		}
	}
	if op.addInput {
		if plus, err = inputData[T](op, inputs, 2, op.g.inShape()); err != nil {
			return err
		}
	}
	dx := outputData[T](out)
	if err := convBackwardData(&op.g, op.scratch, dy, w, b, dx); err != nil {
		return err
	}
	if plus != nil {
		addInto(op.team, dx, plus)
	}
	return nil
}

func (op *convDataOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

// SymDiff differentiates the transposed convolution: its input gradient is the convolution of
// the output gradient, and its weight gradient is the convolution's weight gradient with the
// roles of input and output gradient swapped.
func (op *convDataOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.addInput {
		return nil, fmt.Errorf("%w: %v has no gradient", ErrInvalidArgument, op)
	}
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want %d", ErrInvalidArgument, op, len(inputs), op.Arity())
	}
	x, w := inputs[0], inputs[1]
	dx, err := gorgonia.ApplyOp(newConv2dOp("ConvTranspose2dGradInput", op.g, false, op.scratch), grad, w)
	if err != nil {
		return nil, err
	}
	dw, err := gorgonia.ApplyOp(newConvFilterOp(op.g, op.scratch, op.grads), grad, x)
	if err != nil {
		return nil, err
	}
	grads := gorgonia.Nodes{dx, dw}
	if op.hasBias {
		db, err := gorgonia.ApplyOp(newBiasGradOp(op.g.inShape(), op.grads), grad)
		if err != nil {
			return nil, err
		}
		grads = append(grads, db)
	}
	return grads, nil
}

// convFilterOp computes the gradient of a convolution with respect to its weight: inputs x
// (the convolution's input) and dy (the gradient of its output). With a sink it adds the
// gradient into the sink's weight tensor, which is then its output.
type convFilterOp struct {
	opBase
	g       convGeom
	out     outputBuffer
	scratch *convScratch
	sink    sinkUse
}

func newConvFilterOp(g convGeom, arena *convScratch, sink sinkUse) *convFilterOp {
	return &convFilterOp{opBase: opBase{desc: fmt.Sprintf("Conv2dGradWeight{%v%v}", g, sink)}, g: g, scratch: arena, sink: sink}
}

func (op *convFilterOp) Arity() int    { return 2 }
func (op *convFilterOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convFilterOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.g.weightShape(), nil
}
func (op *convFilterOp) outputShape() tensor.Shape { return op.g.weightShape() }

func (op *convFilterOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.sink.sink != nil {
		return intoKernel(op, op.sink.sink.weight, inputs)
	}
	return doKernel(op, &op.out, inputs)
}

// UsePreallocDo ignores prealloc when the op adds into a sink: its output is the sink tensor.
func (op *convFilterOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.sink.sink != nil {
		return intoKernel(op, op.sink.sink.weight, inputs)
	}
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *convFilterOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runConvFilter[float32](op, out, inputs)
	}
	return runConvFilter[float64](op, out, inputs)
}

func runConvFilter[T float](op *convFilterOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	x, err := inputData[T](op, inputs, 0, op.g.inShape())
	if err != nil {
		return err
	}
	dy, err := inputData[T](op, inputs, 1, op.g.outShape())
	if err != nil {
		return err
	}
	return convBackwardFilter(&op.g, op.scratch, x, dy, outputData[T](out), op.sink.sink != nil)
}

// biasGradOp sums the gradient dy [N, C, H, W] over N, H and W into [C], or with a sink adds
// that sum to the sink's bias tensor, which is then its output.
type biasGradOp struct {
	opBase
	shape tensor.Shape
	out   outputBuffer
	sink  sinkUse
}

func newBiasGradOp(shape tensor.Shape, sink sinkUse) *biasGradOp {
	return &biasGradOp{opBase: opBase{desc: fmt.Sprintf("BiasGrad{%v%v}", shape, sink)}, shape: shape.Clone(), sink: sink}
}

func (op *biasGradOp) Arity() int    { return 1 }
func (op *biasGradOp) Type() hm.Type { return fnType(4, 1) }
func (op *biasGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.outputShape(), nil
}
func (op *biasGradOp) outputShape() tensor.Shape { return tensor.Shape{op.shape[1]} }

func (op *biasGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.sink.sink != nil {
		return intoKernel(op, op.sink.sink.bias, inputs)
	}
	return doKernel(op, &op.out, inputs)
}

// UsePreallocDo ignores prealloc when the op adds into a sink: its output is the sink tensor.
func (op *biasGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.sink.sink != nil {
		return intoKernel(op, op.sink.sink.bias, inputs)
	}
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *biasGradOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runBiasGrad[float32](op, out, inputs)
	}
	return runBiasGrad[float64](op, out, inputs)
}

func runBiasGrad[T float](op *biasGradOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	dy, err := inputData[T](op, inputs, 0, op.shape)
	if err != nil {
		return err
	}
	biasGradient(op.team, dy, outputData[T](out), op.shape[0], op.shape[2]*op.shape[3], op.sink.sink != nil)
	return nil
}

// arenaOwner is an op that holds its graph's shared conv scratch.
type arenaOwner interface {
	arena() *convScratch
}

func (op *conv2dOp) arena() *convScratch     { return op.scratch }
func (op *convDataOp) arena() *convScratch   { return op.scratch }
func (op *convFilterOp) arena() *convScratch { return op.scratch }

// graphArena returns the scratch memory shared by the conv ops of x's graph, or a new one for
// the graph's first. Sharing is safe because a machine runs one op at a time and every op
// writes the scratch it reads. It keeps a graph of hundreds of convolutions to one set of
// packing buffers. The scan starts at the newest node, which is usually one of these ops.
func graphArena(x *gorgonia.Node) *convScratch {
	if g := x.Graph(); g != nil {
		all := g.AllNodes()
		for i := len(all) - 1; i >= 0; i-- {
			if owner, ok := all[i].Op().(arenaOwner); ok {
				return owner.arena()
			}
		}
	}
	return &convScratch{}
}

func allTrue(n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	return out
}
