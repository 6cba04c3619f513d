package ops

import (
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BufferPlan lets the ops of one graph share their output memory. Without it every op keeps
// its own output tensor for good, so a graph keeps every intermediate value of a training
// step at once, backward ones included. Under a plan, an op whose consumers in the graph are
// all ops of this package takes its output from a pool of the graph when it runs. The last
// of its consumers to run gives it back, and later ops reuse it.
type BufferPlan struct {
	pool *bufferPool
	team *teamHandle
	// Pooled counts the ops whose output comes from the pool.
	Pooled int
}

// PlanBuffers makes a plan for g, the graph or exact subgraph (ExactSubgraphRoots) that one
// machine runs. The caller calls Reset before each run. An op belongs to at most one plan:
// planning another graph with the same ops replaces this plan for them. The plan also gives
// the ops helper goroutines that wait for the parts of their parallel loops on the other
// cores (see team); they exit once the ops are garbage.
//
// An output stays private when a node of another kind (a gorgonia op or a Read) consumes it
// or nothing in g consumes it. It also stays private when some gorgonia op in g has an output
// of the same element count, because the machine may let such an op write into the memory of
// a value it no longer needs, which could be pooled memory that another op uses by then. For
// the same reason the ops of a planned graph ignore the memory that the machine offers them
// (UsePreallocDo) and run into their own.
func PlanBuffers(g *gorgonia.ExprGraph) *BufferPlan {
	plan := &BufferPlan{
		pool: &bufferPool{free: map[bufferKey][]*tensor.Dense{}, live: map[*tensor.Dense]int{}},
		team: newTeam(),
	}
	nodes := g.AllNodes()
	inGraph := make(map[*gorgonia.Node]bool, len(nodes))
	foreignSizes := map[int]bool{}
	for _, n := range nodes {
		inGraph[n] = true
		switch op := n.Op().(type) {
		case nil:
		case interface{ base() *opBase }:
			op.base().pool = plan.pool
			op.base().team = plan.team
			if owner, ok := op.(arenaOwner); ok {
				owner.arena().team = plan.team
			}
		default:
			foreignSizes[n.Shape().TotalSize()] = true
		}
	}
	for _, n := range nodes {
		owner, ok := n.Op().(interface{ buffer() *outputBuffer })
		if !ok {
			continue
		}
		buf := owner.buffer()
		if buf == nil || foreignSizes[n.Shape().TotalSize()] {
			continue
		}
		refs := 0
		for parents := g.To(n.ID()); parents.Next(); {
			p := parents.Node().(*gorgonia.Node)
			if !inGraph[p] {
				continue
			}
			if _, ours := p.Op().(interface{ base() *opBase }); !ours {
				refs = 0
				break
			}
			refs++
		}
		buf.refs = refs
		if refs > 0 {
			buf.t = nil // the pool provides the output from now on
			plan.Pooled++
		}
	}
	return plan
}

// Reset returns every pooled tensor to the pool, so that a run that failed halfway leaves
// nothing held.
func (p *BufferPlan) Reset() {
	for t := range p.pool.live {
		p.pool.put(t)
	}
	clear(p.pool.live)
}

// Allocated returns the number of tensors the pool has made so far.
func (p *BufferPlan) Allocated() int { return p.pool.allocated }

// bufferKey identifies tensors that can stand in for each other.
type bufferKey struct {
	dt    tensor.Dtype
	shape [4]int
	dims  int
}

func keyOf(dt tensor.Dtype, shape tensor.Shape) (bufferKey, bool) {
	k := bufferKey{dt: dt, dims: len(shape)}
	if len(shape) > len(k.shape) {
		return k, false
	}
	copy(k.shape[:], shape)
	return k, true
}

// bufferPool keeps the free tensors of a graph by dtype and shape, and the tensors in use
// with the number of consumers yet to give them back. A machine runs one op at a time, so it
// needs no lock.
type bufferPool struct {
	free      map[bufferKey][]*tensor.Dense
	live      map[*tensor.Dense]int
	allocated int
}

// acquire returns a tensor of the given dtype and shape for an output with refs consumers.
func (p *bufferPool) acquire(dt tensor.Dtype, shape tensor.Shape, refs int) *tensor.Dense {
	var t *tensor.Dense
	if k, ok := keyOf(dt, shape); ok {
		if free := p.free[k]; len(free) > 0 {
			t = free[len(free)-1]
			p.free[k] = free[:len(free)-1]
		}
	}
	if t == nil {
		t = tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
		p.allocated++
	}
	p.live[t] = refs
	return t
}

// release counts one consumer off each pooled tensor among inputs, once per tensor, and
// frees those whose last consumer it was.
func (p *bufferPool) release(inputs []gorgonia.Value) {
	for i, v := range inputs {
		t, ok := v.(*tensor.Dense)
		if !ok {
			continue
		}
		refs, ok := p.live[t]
		if !ok || repeated(inputs[:i], v) {
			continue
		}
		if refs > 1 {
			p.live[t] = refs - 1
			continue
		}
		delete(p.live, t)
		p.put(t)
	}
}

func (p *bufferPool) put(t *tensor.Dense) {
	if k, ok := keyOf(t.Dtype(), t.Shape()); ok {
		p.free[k] = append(p.free[k], t)
	}
}

func repeated(earlier []gorgonia.Value, v gorgonia.Value) bool {
	for _, u := range earlier {
		if u == v {
			return true
		}
	}
	return false
}

// buffer returns the op's output buffer, or nil where the output is fixed memory.
func (op *conv2dOp) buffer() *outputBuffer    { return &op.out }
func (op *convDataOp) buffer() *outputBuffer  { return &op.out }
func (op *normOp) buffer() *outputBuffer      { return &op.out }
func (op *padOp) buffer() *outputBuffer       { return &op.out }
func (op *residualOp) buffer() *outputBuffer  { return &op.out }
func (op *pointwiseOp) buffer() *outputBuffer { return &op.out }
func (op *lossGradOp) buffer() *outputBuffer  { return &op.out }

func (op *convFilterOp) buffer() *outputBuffer {
	if op.sink.sink != nil {
		return nil
	}
	return &op.out
}

func (op *biasGradOp) buffer() *outputBuffer {
	if op.sink.sink != nil {
		return nil
	}
	return &op.out
}
