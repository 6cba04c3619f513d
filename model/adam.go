package model

import "math"

// adam is the Adam optimiser over a fixed list of named float32 tensors.
// It exists because gorgonia's AdamSolver keeps its moment estimates
// unexported, and a checkpoint must carry them for an exact resume.
//
// The update follows torch.optim.Adam (PyTorch 1.13, no weight decay, no
// amsgrad), including where it rounds to float32: with t the step count
// after incrementing,
//
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
//
// where the bias corrections are computed in float64 and the per-element
// arithmetic in float32.
type adam struct {
	names   []string    // weight names, in update order
	m, v    [][]float32 // first and second moments, aligned with names
	lengths []int       // elements of each weight
	step    int64       // updates applied so far
}

func newAdam(names []string, sizes []int) *adam {
	a := &adam{names: names, m: make([][]float32, len(names)), v: make([][]float32, len(names)), lengths: sizes}
	for i, n := range sizes {
		a.m[i] = make([]float32, n)
		a.v[i] = make([]float32, n)
	}
	return a
}

// update applies one Adam step to params (aligned with a.names) using grads. Parts of the
// weights are updated on separate goroutines; every element's arithmetic is the same
// whichever part it falls in, so the result does not depend on the split.
func (a *adam) update(lr, beta1, beta2, eps float64, params, grads [][]float32) {
	a.step++
	t := float64(a.step)
	c := adamConstants{
		stepSize:    float32(-lr / (1 - math.Pow(beta1, t))),
		correction2: float32(math.Sqrt(1 - math.Pow(beta2, t))),
		b1:          float32(beta1), c1: float32(1 - beta1),
		b2: float32(beta2), c2: float32(1 - beta2),
		eps: float32(eps),
	}
	forEachPiece(a.lengths, func(_, i, lo, hi int) {
		c.apply(params[i][lo:hi], grads[i][lo:hi], a.m[i][lo:hi], a.v[i][lo:hi])
	})
}

// adamConstants are the float32 factors of one Adam step.
type adamConstants struct {
	stepSize, correction2 float32
	b1, c1, b2, c2        float32
	eps                   float32
}

// apply updates the parameters p and moments m, v (all of len(p)) from the gradient g.
func (c adamConstants) apply(p, g, m, v []float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j := range p {
		gj := g[j]
		m[j] = m[j]*c.b1 + c.c1*gj
		v[j] = v[j]*c.b2 + c.c2*gj*gj
		denominator := float32(math.Sqrt(float64(v[j])))/c.correction2 + c.eps
		p[j] += c.stepSize * (m[j] / denominator)
	}
}
