package model

import (
	"math"
	"testing"
)

// With a constant gradient g, the bias-corrected moments are g and g², so
// every step moves the weight by lr·g/(|g|+ε).
func TestAdamConstantGradient(t *testing.T) {
	const lr = 2e-4
	a := newAdam([]string{"w"}, []int{3})
	params := [][]float32{{1, 1, 1}}
	grads := [][]float32{{0.5, -3, 0}}
	for range 3 {
		a.update(lr, 0.5, 0.999, 1e-8, params, grads)
	}
	want := []float64{1 - 3*lr, 1 + 3*lr, 1}
	for i, w := range want {
		if d := math.Abs(float64(params[0][i]) - w); d > 1e-7 {
			t.Errorf("param %d = %.9g, want %.9g", i, params[0][i], w)
		}
	}
	if a.step != 3 {
		t.Errorf("step = %d, want 3", a.step)
	}
}

// A float64 transcription of the update for changing gradients.
func TestAdamMatchesFloat64Reference(t *testing.T) {
	const lr, beta1, beta2, eps = 1e-3, 0.5, 0.999, 1e-8
	gradients := [][]float32{{0.1, -2}, {0.3, 1}, {-0.2, 0.5}, {0.05, -0.7}}
	a := newAdam([]string{"w"}, []int{2})
	params := [][]float32{{0.25, -0.5}}

	p := []float64{0.25, -0.5}
	m := []float64{0, 0}
	v := []float64{0, 0}
	for step, g := range gradients {
		a.update(lr, beta1, beta2, eps, params, [][]float32{g})
		t64 := float64(step + 1)
		for i := range p {
			gi := float64(g[i])
			m[i] = beta1*m[i] + (1-beta1)*gi
			v[i] = beta2*v[i] + (1-beta2)*gi*gi
			mHat := m[i] / (1 - math.Pow(beta1, t64))
			vHat := v[i] / (1 - math.Pow(beta2, t64))
			p[i] -= lr * mHat / (math.Sqrt(vHat) + eps)
		}
	}
	for i := range p {
		if d := math.Abs(float64(params[0][i]) - p[i]); d > 1e-6 {
			t.Errorf("param %d = %.9g, float64 reference %.9g", i, params[0][i], p[i])
		}
		if d := math.Abs(float64(a.m[0][i]) - m[i]); d > 1e-6 {
			t.Errorf("first moment %d = %.9g, reference %.9g", i, a.m[0][i], m[i])
		}
		if d := math.Abs(float64(a.v[0][i]) - v[i]); d > 1e-7 {
			t.Errorf("second moment %d = %.9g, reference %.9g", i, a.v[0][i], v[i])
		}
	}
}
