package model

import (
	"errors"
	"fmt"
	"sync"
)

// Direction selects a generator.
type Direction int

const (
	// AtoB translates domain A images to domain B with G_A.
	AtoB Direction = iota
	// BtoA translates domain B images to domain A with G_B.
	BtoA
)

func (d Direction) String() string {
	switch d {
	case AtoB:
		return "AtoB"
	case BtoA:
		return "BtoA"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

func (d Direction) generator() string {
	if d == BtoA {
		return netGB
	}
	return netGA
}

func (d Direction) reverse() Direction { return 1 - d }

// maxTranslatorGraphs bounds the compiled graphs a Translator keeps, one
// per direction and image size; the least recently built one is dropped.
const maxTranslatorGraphs = 16

// Translator runs the two generators of a checkpoint on single images. It
// compiles one graph per direction and image size on first use and reuses
// it. It is safe for concurrent use; calls run one at a time.
type Translator struct {
	cfg     Config
	weights *weightSet // G_A and G_B

	mu     sync.Mutex
	graphs map[translatorKey]*translatorGraph
	order  []translatorKey // build order, oldest first
}

type translatorKey struct {
	direction     Direction
	height, width int
}

type translatorGraph struct {
	graph  *compiledGraph
	input  []float32
	output *readout
}

// LoadTranslator loads G_A and G_B from checkpoint bytes written by
// CycleGAN.Checkpoint. Their tensors are checked like Resume does; the
// other tensors must have known names but are not read.
func LoadTranslator(checkpoint []byte) (*Translator, error) {
	tensors, metadata, err := decodeSafetensors(checkpoint)
	if err != nil {
		return nil, err
	}
	cfg, err := checkpointConfig(metadata)
	if err != nil {
		return nil, err
	}
	if err := checkNames(cfg, tensors); err != nil {
		return nil, err
	}
	weights := newWeightSet(cfg, netGA, netGB)
	if err := weights.load(tensors); err != nil {
		return nil, err
	}
	return newTranslator(cfg, weights), nil
}

// Translator returns a Translator with a copy of the model's current
// generator weights.
func (m *CycleGAN) Translator() *Translator {
	weights := newWeightSet(m.cfg, netGA, netGB)
	for _, spec := range weights.specs {
		copy(weights.data(spec.name), m.weights.data(spec.name))
	}
	return newTranslator(m.cfg, weights)
}

func newTranslator(cfg Config, weights *weightSet) *Translator {
	return &Translator{cfg: cfg, weights: weights, graphs: map[translatorKey]*translatorGraph{}}
}

// Config returns the configuration stored with the generators.
func (t *Translator) Config() Config { return t.cfg }

// Translate returns the generator's output for one image, float32 CHW of
// shape [3, height, width] with pixels in [-1, 1]; height and width must
// be multiples of 4 and at least MinImageSize. The result has the same
// shape.
func (t *Translator) Translate(direction Direction, image []float32, height, width int) ([]float32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.translate(direction, image, height, width)
}

// Cycle translates an image in the given direction and back, returning the
// translated image (fake) and its reconstruction (rec), both [3, height, width].
func (t *Translator) Cycle(direction Direction, image []float32, height, width int) (fake, rec []float32, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fake, err = t.translate(direction, image, height, width); err != nil {
		return nil, nil, err
	}
	if rec, err = t.translate(direction.reverse(), fake, height, width); err != nil {
		return nil, nil, err
	}
	return fake, rec, nil
}

// Close releases the compiled graphs.
func (t *Translator) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for key, g := range t.graphs {
		errs = append(errs, g.graph.close())
		delete(t.graphs, key)
	}
	t.order = nil
	return errors.Join(errs...)
}

func (t *Translator) translate(direction Direction, image []float32, height, width int) ([]float32, error) {
	if direction != AtoB && direction != BtoA {
		return nil, fmt.Errorf("%w: unknown direction %d", ErrInvalidImage, int(direction))
	}
	for _, side := range []int{height, width} {
		if side%4 != 0 || side < MinImageSize || side > maxImageSide {
			return nil, fmt.Errorf("%w: size %d×%d: each side must be a multiple of 4 between %d and %d", ErrInvalidImage, height, width, MinImageSize, maxImageSide)
		}
	}
	if len(image) != 3*height*width {
		return nil, fmt.Errorf("%w: %d values for a 3×%d×%d image, want %d", ErrInvalidImage, len(image), height, width, 3*height*width)
	}
	if i, v, bad := firstNonFinite(image); bad {
		return nil, fmt.Errorf("%w: non-finite value %v at index %d", ErrInvalidImage, v, i)
	}

	g, err := t.graph(translatorKey{direction, height, width})
	if err != nil {
		return nil, err
	}
	copy(g.input, image)
	if err := g.graph.run(); err != nil {
		return nil, fmt.Errorf("translate %v %d×%d: %w", direction, height, width, err)
	}
	return append([]float32(nil), g.output.floats()...), nil
}

// graph returns the compiled graph for key, building it on first use.
func (t *Translator) graph(key translatorKey) (*translatorGraph, error) {
	if g, ok := t.graphs[key]; ok {
		return g, nil
	}
	b := newGraphBuilder(t.weights)
	x, input := b.input("image", 1, 3, key.height, key.width)
	y, err := b.network(t.cfg, key.direction.generator(), x)
	if err != nil {
		return nil, fmt.Errorf("build %v graph for %d×%d: %w", key.direction, key.height, key.width, err)
	}
	var r reader
	output := r.read(y)
	g := &translatorGraph{graph: compile(b, r.nodes), input: input, output: output}

	if len(t.order) >= maxTranslatorGraphs {
		oldest := t.order[0]
		t.order = t.order[1:]
		// A close error of a dropped graph's machine leaves nothing to undo.
		_ = t.graphs[oldest].graph.close()
		delete(t.graphs, oldest)
	}
	t.graphs[key] = g
	t.order = append(t.order, key)
	return g, nil
}
