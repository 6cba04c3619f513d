package ops

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// float is the element type of the kernels.
type float interface{ ~float32 | ~float64 }

// opBase holds what every op here shares: a description that names the op and all its
// parameters (so gorgonia never merges two ops that differ), and the methods that follow from
// not touching the inputs.
type opBase struct {
	desc string
	pool *bufferPool // the graph's pool under a buffer plan, else nil
	team *teamHandle // the graph's helper goroutines under a buffer plan, else nil
}

func (o *opBase) base() *opBase { return o }

// releaseInputs gives the pooled tensors among inputs back to the pool, once per tensor.
func (o *opBase) releaseInputs(inputs []gorgonia.Value) {
	if o.pool != nil {
		o.pool.release(inputs)
	}
}

func (o *opBase) String() string        { return o.desc }
func (o *opBase) WriteHash(h hash.Hash) { fmt.Fprint(h, o.desc) }
func (o *opBase) ReturnsPtr() bool      { return false }
func (o *opBase) CallsExtern() bool     { return false }
func (o *opBase) OverwritesInput() int  { return -1 }
func (o *opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// fnType returns the hm type a₁ → … → aₙ → r for tensors of the given ranks, all of one
// element type.
func fnType(ranks ...int) hm.Type {
	a := hm.TypeVariable('a')
	types := make(hm.Types, len(ranks))
	for i, r := range ranks {
		types[i] = &gorgonia.TensorType{Dims: r, Of: a}
	}
	return hm.NewFnType(types...)
}

// outputBuffer is an op's output tensor, reused across runs while dtype and shape stay the same.
// Under a buffer plan, refs > 0 says that the output comes from the graph's pool instead and
// how many consumer ops give it back.
type outputBuffer struct {
	t    *tensor.Dense
	refs int
}

func (b *outputBuffer) get(dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if b.t == nil || b.t.Dtype() != dt || !b.t.Shape().Eq(shape) || b.t.RequiresIterator() {
		b.t = tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
	}
	return b.t
}

// scratch is reusable working memory of either element type, kept between calls because a
// machine runs one op at a time.
type scratch struct {
	f32 []float32
	f64 []float64
}

// scratchSlice returns a slice of n elements from s, growing it when needed. Its contents are
// whatever the last user left.
func scratchSlice[T float](s *scratch, n int) []T {
	var zero T
	switch any(zero).(type) {
	case float32:
		if cap(s.f32) < n {
			s.f32 = make([]float32, n)
		}
		return any(s.f32[:n]).([]T)
	default:
		if cap(s.f64) < n {
			s.f64 = make([]float64, n)
		}
		return any(s.f64[:n]).([]T)
	}
}

// dtypeOf returns the dtype of the first input, which must be a float32 or float64 tensor.
func dtypeOf(op string, inputs []gorgonia.Value) (tensor.Dtype, error) {
	if len(inputs) == 0 {
		return tensor.Dtype{}, fmt.Errorf("%w: %s: no inputs", ErrInvalidArgument, op)
	}
	d, ok := inputs[0].(tensor.Tensor)
	if !ok {
		return tensor.Dtype{}, fmt.Errorf("%w: %s: input 0 is %T, want a tensor", ErrInvalidDtype, op, inputs[0])
	}
	dt := d.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return dt, fmt.Errorf("%w: %s: input 0 is %v, want float32 or float64", ErrInvalidDtype, op, dt)
	}
	return dt, nil
}

// valueData returns the contiguous elements of v in row-major order after checking its shape.
// A strided view is copied.
func valueData[T float](op string, i int, v gorgonia.Value, shape tensor.Shape) ([]T, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%w: %s: input %d is %T, want *tensor.Dense", ErrInvalidDtype, op, i, v)
	}
	if !d.Shape().Eq(shape) {
		return nil, fmt.Errorf("%w: %s: input %d has shape %v, want %v", ErrInvalidShape, op, i, d.Shape(), shape)
	}
	if d.RequiresIterator() {
		d = d.Materialize().(*tensor.Dense)
	}
	data, ok := d.Data().([]T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("%w: %s: input %d is %v, want %T", ErrInvalidDtype, op, i, d.Dtype(), zero)
	}
	return data[:shape.TotalSize()], nil
}

// preallocTarget checks that prealloc can hold an output of dtype dt and the given shape.
func preallocTarget(op string, prealloc gorgonia.Value, dt tensor.Dtype, shape tensor.Shape) (*tensor.Dense, error) {
	d, ok := prealloc.(*tensor.Dense)
	if !ok || d.Dtype() != dt || !d.Shape().Eq(shape) || d.RequiresIterator() {
		return nil, fmt.Errorf("%w: %s: preallocated value %v does not fit an output %v%v", ErrInvalidShape, op, prealloc, dt, shape)
	}
	return d, nil
}

// minParallelWork is the work (element operations) below which parallelFor stays on one
// goroutine. It is an estimate from the cost of handing work to another goroutine and
// waiting for it (a few µs).
const minParallelWork = 32 * 1024
