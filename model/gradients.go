package model

import (
	"fmt"
	"strings"

	"gorgonia.org/tensor"

	"github.com/gocyclegan/cyclegan/model/ops"
)

// gradientSet is the gradient of some weights, one tensor per weight, which
// the convolutions of one graph add into through an ops.GradSink per layer.
// It is zeroed before each run of the graph.
type gradientSet struct {
	names   []string                 // weight names, in optimiser order
	data    [][]float32              // gradients, aligned with names
	lengths []int                    // len(data[i])
	sinks   map[string]*ops.GradSink // by layer prefix, e.g. "G_A.model.1"
}

// newGradientSet allocates zero gradients for the named weights, which come
// in weight–bias pairs of the same layer as weightSet lists them.
func newGradientSet(weights *weightSet, names []string) (*gradientSet, error) {
	s := &gradientSet{names: names, sinks: map[string]*ops.GradSink{}}
	tensors := map[string]*tensor.Dense{}
	for _, name := range names {
		shape := weights.values[name].Shape()
		data := make([]float32, shape.TotalSize())
		tensors[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		s.data = append(s.data, data)
		s.lengths = append(s.lengths, len(data))
	}
	for _, name := range names {
		prefix, ok := strings.CutSuffix(name, ".weight")
		if !ok {
			continue
		}
		bias, ok := tensors[prefix+".bias"]
		if !ok {
			return nil, fmt.Errorf("gradient of %s: layer %s has no bias among the trained weights", name, prefix)
		}
		sink, err := ops.NewGradSink(tensors[name], bias)
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", name, err)
		}
		s.sinks[prefix] = sink
	}
	return s, nil
}

// sink returns the gradient sink of a layer, or nil if the set does not
// train it or the set is nil.
func (s *gradientSet) sink(prefix string) *ops.GradSink {
	if s == nil {
		return nil
	}
	return s.sinks[prefix]
}

// zero clears every gradient, in parallel parts.
func (s *gradientSet) zero() {
	forEachPiece(s.lengths, func(_, i, lo, hi int) { clear(s.data[i][lo:hi]) })
}
