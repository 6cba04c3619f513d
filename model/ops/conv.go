package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2d applies a 2-D convolution with zero padding: x [N, Cin, H, W], w [Cout, Cin, K, K],
// b [Cout] or nil; the output is [N, Cout, Ho, Wo] with Ho = (H + 2·pad − K)/stride + 1.
func Conv2d(x, w, b *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	return conv2d("Conv2d", x, w, b, stride, pad, false)
}

// Conv2dReflect is Conv2d on the input padded by reflection (as PyTorch's ReflectionPad2d
// followed by Conv2d without padding), without building the padded tensor. pad must be
// smaller than H and W.
func Conv2dReflect(x, w, b *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	return conv2d("Conv2dReflect", x, w, b, stride, pad, true)
}

func conv2d(name string, x, w, b *gorgonia.Node, stride, pad int, reflect bool) (*gorgonia.Node, error) {
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
	g, err := newConvGeom(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], stride, pad, reflect)
	if err != nil {
		return nil, fmt.Errorf("%s of input %v with weight %v: %w", name, xs, ws, err)
	}
	op := newConv2dOp(name, g, b != nil, graphArena(x))
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

// conv2dOp computes conv(x, w) + b. Inputs: x, w and, with hasBias, b.
type conv2dOp struct {
	opBase
	g       convGeom
	hasBias bool
	out     outputBuffer
	scratch *convScratch
}

func newConv2dOp(name string, g convGeom, hasBias bool, arena *convScratch) *conv2dOp {
	return &conv2dOp{opBase: opBase{fmt.Sprintf("%s{%v bias=%t}", name, g, hasBias)}, g: g, hasBias: hasBias, scratch: arena}
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
	return preallocKernel(op, prealloc, inputs)
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
	dx, err := gorgonia.ApplyOp(newConvDataOp("Conv2dGradInput", op.g, false, op.scratch), grad, w)
	if err != nil {
		return nil, err
	}
	dw, err := gorgonia.ApplyOp(newConvFilterOp(op.g, op.scratch), x, grad)
	if err != nil {
		return nil, err
	}
	grads := gorgonia.Nodes{dx, dw}
	if op.hasBias {
		db, err := gorgonia.ApplyOp(newBiasGradOp(op.g.outShape()), grad)
		if err != nil {
			return nil, err
		}
		grads = append(grads, db)
	}
	return grads, nil
}

// convDataOp computes the gradient of a convolution with respect to its input, which is also
// the transposed convolution: inputs dy (shaped as the convolution's output), w and, with
// hasBias, a bias added per channel of the result.
type convDataOp struct {
	opBase
	g       convGeom
	hasBias bool
	out     outputBuffer
	scratch *convScratch
}

func newConvDataOp(name string, g convGeom, hasBias bool, arena *convScratch) *convDataOp {
	return &convDataOp{opBase: opBase{fmt.Sprintf("%s{%v bias=%t}", name, g, hasBias)}, g: g, hasBias: hasBias, scratch: arena}
}

func (op *convDataOp) Arity() int {
	if op.hasBias {
		return 3
	}
	return 2
}

func (op *convDataOp) Type() hm.Type {
	if op.hasBias {
		return fnType(4, 4, 1, 4)
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
	return preallocKernel(op, prealloc, inputs)
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
	var b []T
	if op.hasBias {
		if b, err = inputData[T](op, inputs, 2, tensor.Shape{op.g.cin}); err != nil {
			return err
		}
	}
	return convBackwardData(&op.g, op.scratch, dy, w, b, outputData[T](out))
}

func (op *convDataOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

// SymDiff differentiates the transposed convolution: its input gradient is the convolution of
// the output gradient, and its weight gradient is the convolution's weight gradient with the
// roles of input and output gradient swapped.
func (op *convDataOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want %d", ErrInvalidArgument, op, len(inputs), op.Arity())
	}
	x, w := inputs[0], inputs[1]
	dx, err := gorgonia.ApplyOp(newConv2dOp("ConvTranspose2dGradInput", op.g, false, op.scratch), grad, w)
	if err != nil {
		return nil, err
	}
	dw, err := gorgonia.ApplyOp(newConvFilterOp(op.g, op.scratch), grad, x)
	if err != nil {
		return nil, err
	}
	grads := gorgonia.Nodes{dx, dw}
	if op.hasBias {
		db, err := gorgonia.ApplyOp(newBiasGradOp(op.g.inShape()), grad)
		if err != nil {
			return nil, err
		}
		grads = append(grads, db)
	}
	return grads, nil
}

// convFilterOp computes the gradient of a convolution with respect to its weight: inputs x
// (the convolution's input) and dy (the gradient of its output).
type convFilterOp struct {
	opBase
	g       convGeom
	out     outputBuffer
	scratch *convScratch
}

func newConvFilterOp(g convGeom, arena *convScratch) *convFilterOp {
	return &convFilterOp{opBase: opBase{fmt.Sprintf("Conv2dGradWeight{%v}", g)}, g: g, scratch: arena}
}

func (op *convFilterOp) Arity() int    { return 2 }
func (op *convFilterOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convFilterOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.g.weightShape(), nil
}
func (op *convFilterOp) outputShape() tensor.Shape { return op.g.weightShape() }

func (op *convFilterOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *convFilterOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, prealloc, inputs)
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
	return convBackwardFilter(&op.g, op.scratch, x, dy, outputData[T](out))
}

// biasGradOp sums the gradient dy [N, C, H, W] over N, H and W into [C].
type biasGradOp struct {
	opBase
	shape tensor.Shape
	out   outputBuffer
}

func newBiasGradOp(shape tensor.Shape) *biasGradOp {
	return &biasGradOp{opBase: opBase{fmt.Sprintf("BiasGrad{%v}", shape)}, shape: shape.Clone()}
}

func (op *biasGradOp) Arity() int    { return 1 }
func (op *biasGradOp) Type() hm.Type { return fnType(4, 1) }
func (op *biasGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.outputShape(), nil
}
func (op *biasGradOp) outputShape() tensor.Shape { return tensor.Shape{op.shape[1]} }

func (op *biasGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *biasGradOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, prealloc, inputs)
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
	biasGradient(dy, outputData[T](out), op.shape[0], op.shape[2]*op.shape[3])
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
