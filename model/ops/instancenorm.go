package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// InstanceNorm normalises each channel of each sample of x [N, C, H, W] over H×W to zero mean
// and unit variance (biased variance plus eps under the square root), then applies act. It
// has no affine parameters and no running statistics, as PyTorch's InstanceNorm2d with its
// defaults. A constant channel gives zeros.
func InstanceNorm(x *gorgonia.Node, eps float64, act Activation) (*gorgonia.Node, error) {
	const name = "InstanceNorm"
	if x == nil {
		return nil, fmt.Errorf("%w: %s: input must not be nil", ErrInvalidArgument, name)
	}
	if _, err := checkDtypes(name, x); err != nil {
		return nil, err
	}
	xs, err := shape4(name, "input", x)
	if err != nil {
		return nil, err
	}
	if !(eps > 0) || math.IsInf(eps, 1) {
		return nil, fmt.Errorf("%w: %s: epsilon %v, want a finite number > 0", ErrInvalidArgument, name, eps)
	}
	if err := act.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return gorgonia.ApplyOp(newNormOp(xs, eps, act, false), x)
}

// normOp is instance normalisation with a fused activation (forward: input x) or its gradient
// (backward: inputs x, the forward output y and the output gradient dy). The forward op keeps
// each plane's mean and 1/std of its last run, and its backward op reads them instead of
// recomputing them. The backward op does not read y's values: y as an input only makes the
// machine run the forward op first, in the same run and on the same x.
type normOp struct {
	opBase
	shape    tensor.Shape
	eps      float64
	act      Activation
	backward bool
	out      outputBuffer
	// stats contains (mean, rstd) per plane: the forward op's own, or for a backward op those
	// of its forward op.
	stats *[]float64
}

func newNormOp(shape tensor.Shape, eps float64, act Activation, backward bool) *normOp {
	name := "InstanceNorm"
	if backward {
		name = "InstanceNormGrad"
	}
	return &normOp{
		opBase:   opBase{desc: fmt.Sprintf("%s{%v eps=%g act=%v}", name, shape, eps, act)},
		shape:    shape.Clone(),
		eps:      eps,
		act:      act,
		backward: backward,
		stats:    new([]float64),
	}
}

func (op *normOp) Arity() int {
	if op.backward {
		return 3
	}
	return 1
}

func (op *normOp) Type() hm.Type {
	if op.backward {
		return fnType(4, 4, 4, 4)
	}
	return fnType(4, 4)
}

func (op *normOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}

func (op *normOp) outputShape() tensor.Shape { return op.shape }

func (op *normOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return doKernel(op, &op.out, inputs)
}

func (op *normOp) UsePreallocDo(prealloc gorgonia.Value, inputs ...gorgonia.Value) (gorgonia.Value, error) {
	return preallocKernel(op, &op.out, prealloc, inputs)
}

func (op *normOp) run(out *tensor.Dense, inputs []gorgonia.Value) error {
	if out.Dtype() == tensor.Float32 {
		return runNorm[float32](op, out, inputs)
	}
	return runNorm[float64](op, out, inputs)
}

func runNorm[T float](op *normOp, out *tensor.Dense, inputs []gorgonia.Value) error {
	x, err := inputData[T](op, inputs, 0, op.shape)
	if err != nil {
		return err
	}
	var dy []T
	if op.backward {
		if dy, err = inputData[T](op, inputs, 2, op.shape); err != nil {
			return err
		}
	}
	y := outputData[T](out)
	planes, size := op.shape[0]*op.shape[1], op.shape[2]*op.shape[3]
	slope := op.act.negativeSlope()
	stats := *op.stats
	known := op.backward && len(stats) == 2*planes
	if !op.backward && len(stats) != 2*planes {
		stats = make([]float64, 2*planes)
		*op.stats = stats
	}
	op.team.parallelFor(planes, planes*size*4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xp, yp := x[p*size:(p+1)*size], y[p*size:(p+1)*size]
			var mean, rstd float64
			if known {
				mean, rstd = stats[2*p], stats[2*p+1]
			} else {
				mean, rstd = planeStats(xp, op.eps)
			}
			if op.backward {
				normBackward(xp, dy[p*size:(p+1)*size], yp, mean, rstd, slope)
			} else {
				stats[2*p], stats[2*p+1] = mean, rstd
				normForward(xp, yp, mean, rstd, slope)
			}
		}
	})
	return nil
}

// planeStats returns the mean and 1/sqrt(variance + eps) of x, with the biased variance
// computed in two passes in float64 so that float32 planes of any size stay accurate. Four
// partial sums per pass keep the additions from waiting on each other.
func planeStats[T float](x []T, eps float64) (mean, rstd float64) {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	mean = (s0 + s1 + s2 + s3) / float64(len(x))
	s0, s1, s2, s3 = 0, 0, 0, 0
	i = 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := float64(x[i])-mean, float64(x[i+1])-mean, float64(x[i+2])-mean, float64(x[i+3])-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - mean
		s0 += d * d
	}
	return mean, 1 / math.Sqrt((s0+s1+s2+s3)/float64(len(x))+eps)
}

// normForward writes y = act((x − mean)·rstd), where act scales non-positive values by
// slope. It uses min and max instead of a branch, which the sign of x̂ would mispredict half
// of the time.
func normForward[T float](x, y []T, mean, rstd, slope float64) {
	m, r, s := T(mean), T(rstd), T(slope)
	y = y[:len(x)]
	for i, v := range x {
		n := (v - m) * r
		y[i] = max(n, 0) + s*min(n, 0)
	}
}

// normBackward writes dx from dy for y = act(x̂), x̂ = (x − mean)·rstd:
// with g = dy·act'(x̂), dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
func normBackward[T float](x, dy, dx []T, mean, rstd, slope float64) {
	switch x := any(x).(type) {
	case []float32:
		normBackward32(x, any(dy).([]float32), any(dx).([]float32), float32(mean), float32(rstd), float32(slope))
	case []float64:
		normBackward64(x, any(dy).([]float64), any(dx).([]float64), mean, rstd, slope)
	}
}

// normBackward32 is normBackward for float32. act'(x̂) is chosen through the bits of 1 and
// slope so that the compiler emits a conditional move instead of a branch.
func normBackward32(x, dy, dx []float32, m, r, s float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	one, slope := math.Float32bits(1), math.Float32bits(s)
	var g0, g1, gx0, gx1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		n0, n1 := (x[i]-m)*r, (x[i+1]-m)*r
		f0, f1 := slope, slope
		if n0 > 0 {
			f0 = one
		}
		if n1 > 0 {
			f1 = one
		}
		d0, d1 := dy[i]*math.Float32frombits(f0), dy[i+1]*math.Float32frombits(f1)
		g0 += float64(d0)
		g1 += float64(d1)
		gx0 += float64(d0 * n0)
		gx1 += float64(d1 * n1)
	}
	for ; i < len(x); i++ {
		n := (x[i] - m) * r
		f := slope
		if n > 0 {
			f = one
		}
		d := dy[i] * math.Float32frombits(f)
		g0 += float64(d)
		gx0 += float64(d * n)
	}
	meanG, meanGX := float32((g0+g1)/float64(len(x))), float32((gx0+gx1)/float64(len(x)))
	for i, v := range x {
		n := (v - m) * r
		f := slope
		if n > 0 {
			f = one
		}
		dx[i] = r * (dy[i]*math.Float32frombits(f) - meanG - n*meanGX)
	}
}

// normBackward64 is normBackward for float64, used by gradient checks.
func normBackward64(x, dy, dx []float64, m, r, s float64) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	var sumG, sumGX float64
	for i, v := range x {
		n := (v - m) * r
		d := dy[i]
		if n <= 0 {
			d *= s
		}
		sumG += d
		sumGX += d * n
	}
	meanG, meanGX := sumG/float64(len(x)), sumGX/float64(len(x))
	for i, v := range x {
		n := (v - m) * r
		d := dy[i]
		if n <= 0 {
			d *= s
		}
		dx[i] = r * (d - meanG - n*meanGX)
	}
}

func (op *normOp) DiffWRT(inputs int) []bool { return allTrue(inputs) }

func (op *normOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.backward {
		return nil, fmt.Errorf("%w: %v has no gradient", ErrInvalidArgument, op)
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: got %d inputs, want 1", ErrInvalidArgument, op, len(inputs))
	}
	back := newNormOp(op.shape, op.eps, op.act, true)
	back.stats = op.stats
	dx, err := gorgonia.ApplyOp(back, inputs[0], output, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx}, nil
}
