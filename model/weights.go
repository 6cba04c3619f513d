package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gorgonia.org/tensor"
)

// initStdDev is the standard deviation of the normal distribution that
// convolution weights are drawn from (mean 0); biases start at 0.
const initStdDev = 0.02

// weightSet holds the learnable tensors of some networks, each stored once
// and keyed by checkpoint name. Every graph wraps these same tensors, so an
// update made here is seen by all graphs.
type weightSet struct {
	specs  []weightSpec
	values map[string]*tensor.Dense
}

// newWeightSet allocates zero tensors for the named networks.
func newWeightSet(cfg Config, networks ...string) *weightSet {
	w := &weightSet{values: map[string]*tensor.Dense{}}
	for _, network := range networks {
		for _, spec := range networkWeights(cfg, network) {
			w.specs = append(w.specs, spec)
			w.values[spec.name] = tensor.New(tensor.WithShape(spec.shape...), tensor.WithBacking(make([]float32, shapeSize(spec.shape))))
		}
	}
	return w
}

// initNormal draws every weight from N(0, initStdDev) and zeroes every
// bias, in spec order, so a seed reproduces the same networks.
func (w *weightSet) initNormal(rng *rand.Rand) {
	for _, spec := range w.specs {
		data := w.data(spec.name)
		if strings.HasSuffix(spec.name, ".bias") {
			clear(data)
			continue
		}
		for i := range data {
			data[i] = float32(rng.NormFloat64() * initStdDev)
		}
	}
}

func (w *weightSet) data(name string) []float32 {
	return w.values[name].Data().([]float32)
}

// names returns the weight names of one network (a prefix such as "G_A.")
// or of all networks for an empty prefix, in spec order.
func (w *weightSet) names(prefix string) []string {
	var names []string
	for _, spec := range w.specs {
		if strings.HasPrefix(spec.name, prefix) {
			names = append(names, spec.name)
		}
	}
	return names
}

// load copies the tensors of the set from a decoded file after checking
// each one's presence, shape and values.
func (w *weightSet) load(tensors map[string]namedTensor) error {
	for _, spec := range w.specs {
		t, err := lookupTensor(tensors, spec.name, spec.shape)
		if err != nil {
			return err
		}
		copy(w.data(spec.name), t.data)
	}
	return nil
}

// lookupTensor returns the named tensor after checking that it exists, has
// the given shape and holds only finite values.
func lookupTensor(tensors map[string]namedTensor, name string, shape []int) (namedTensor, error) {
	t, ok := tensors[name]
	if !ok {
		return t, fmt.Errorf("%w: tensor %s is missing", ErrInvalidCheckpoint, name)
	}
	if !equalShapes(t.shape, shape) {
		return t, fmt.Errorf("%w: tensor %s has shape %v, the config needs %v", ErrInvalidCheckpoint, name, t.shape, shape)
	}
	if i, v, bad := firstNonFinite(t.data); bad {
		return t, fmt.Errorf("%w: tensor %s has the non-finite value %v at index %d", ErrInvalidCheckpoint, name, v, i)
	}
	return t, nil
}

func equalShapes(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// firstNonFinite returns the index and value of the first NaN or infinity
// in data.
func firstNonFinite(data []float32) (int, float32, bool) {
	for i, v := range data {
		// v−v is NaN exactly when v is NaN or ±Inf.
		if v-v != 0 {
			return i, v, true
		}
	}
	return 0, 0, false
}

// isFinite reports whether v is neither NaN nor infinite.
func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
