package model

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A checkpoint is a safetensors file holding:
//
//   - the weights of G_A, G_B, D_A and D_B, named like the reference
//     PyTorch state dicts with the network as prefix
//     ("G_A.model.1.weight", "G_A.model.10.conv_block.1.weight",
//     "D_A.model.0.weight"; a transposed convolution's weight is
//     [in, out, k, k]);
//   - Adam's moments of every weight, "adam.m.<name>" and "adam.v.<name>";
//   - the image pools "pool.A" (generated A images) and "pool.B" (generated
//     B images), each [count, 3, crop_size, crop_size];
//
// and in __metadata__ the keys below, all strings.
const (
	checkpointFormat = "cyclegan-checkpoint-1"

	metaFormat          = "format"           // checkpointFormat
	metaConfig          = "config"           // Config as JSON
	metaStep            = "step"             // updates applied
	metaEpoch           = "epoch"            // Config.Epoch(step), the epoch of the next step
	metaLearningRate    = "learning_rate"    // Config.LearningRateAt(epoch)
	metaRNG             = "rng"              // base64 of the pools' PCG state (math/rand/v2 PCG.MarshalBinary)
	metaAdamGStep       = "adam.G.step"      // updates applied by the generators' Adam
	metaAdamDStep       = "adam.D.step"      // updates applied by the discriminators' Adam
	metaPoolACount      = "pool.A.count"     // images in pool.A
	metaPoolBCount      = "pool.B.count"     // images in pool.B
	metaNonFiniteStreak = "nonfinite_streak" // skipped steps in a row before this checkpoint
)

const (
	poolATensor = "pool.A"
	poolBTensor = "pool.B"
)

// Checkpoint encodes the whole training state as safetensors. It returns
// an error wrapping ErrNonFiniteState, and writes nothing, if any weight,
// moment or pooled image is NaN or infinite.
func (m *CycleGAN) Checkpoint() ([]byte, error) {
	tensors := map[string]namedTensor{}
	add := func(name string, shape []int, data []float32) error {
		if i, v, bad := firstNonFinite(data); bad {
			return fmt.Errorf("%w: %s has the non-finite value %v at index %d", ErrNonFiniteState, name, v, i)
		}
		tensors[name] = namedTensor{shape: shape, data: data}
		return nil
	}
	for _, spec := range m.weights.specs {
		if err := add(spec.name, spec.shape, m.weights.data(spec.name)); err != nil {
			return nil, err
		}
	}
	for _, a := range []*adam{m.adamG, m.adamD} {
		for i, name := range a.names {
			shape := m.weights.values[name].Shape()
			if err := add("adam.m."+name, shape, a.m[i]); err != nil {
				return nil, err
			}
			if err := add("adam.v."+name, shape, a.v[i]); err != nil {
				return nil, err
			}
		}
	}
	for name, pool := range map[string]*imagePool{poolATensor: m.poolA, poolBTensor: m.poolB} {
		if err := add(name, m.poolShape(len(pool.images)), pool.flat()); err != nil {
			return nil, err
		}
	}

	configJSON, err := json.Marshal(m.cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	rngState, err := m.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode pool random state: %w", err)
	}
	epoch := m.cfg.Epoch(m.step)
	metadata := map[string]string{
		metaFormat:          checkpointFormat,
		metaConfig:          string(configJSON),
		metaStep:            strconv.FormatInt(m.step, 10),
		metaEpoch:           strconv.FormatInt(epoch, 10),
		metaLearningRate:    strconv.FormatFloat(m.cfg.LearningRateAt(epoch), 'g', -1, 64),
		metaRNG:             base64.StdEncoding.EncodeToString(rngState),
		metaAdamGStep:       strconv.FormatInt(m.adamG.step, 10),
		metaAdamDStep:       strconv.FormatInt(m.adamD.step, 10),
		metaPoolACount:      strconv.Itoa(len(m.poolA.images)),
		metaPoolBCount:      strconv.Itoa(len(m.poolB.images)),
		metaNonFiniteStreak: strconv.Itoa(m.nonFiniteStreak),
	}
	return encodeSafetensors(tensors, metadata)
}

func (m *CycleGAN) poolShape(count int) []int {
	return []int{count, 3, m.cfg.CropSize, m.cfg.CropSize}
}

// Resume rebuilds a CycleGAN from checkpoint bytes alone: config, weights,
// Adam moments and step counts, image pools, their random source and the
// step count. Training on from it gives the same weights as never having
// stopped. Every tensor's name, shape, dtype and values are checked
// against the stored config; any problem returns an error wrapping
// ErrInvalidCheckpoint (or ErrInvalidConfig) that names it.
func Resume(checkpoint []byte) (*CycleGAN, error) {
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
	meta := metadataReader{metadata: metadata}
	step := meta.int("step", metaStep, 0, 1<<62)
	adamGStep := meta.int("generator Adam step", metaAdamGStep, 0, 1<<62)
	adamDStep := meta.int("discriminator Adam step", metaAdamDStep, 0, 1<<62)
	countA := meta.int("pool A size", metaPoolACount, 0, int64(cfg.PoolSize))
	countB := meta.int("pool B size", metaPoolBCount, 0, int64(cfg.PoolSize))
	streak := meta.int("non-finite streak", metaNonFiniteStreak, 0, MaxNonFiniteSteps)
	epoch := meta.int("epoch", metaEpoch, 0, 1<<62)
	rngState := meta.base64("pool random state", metaRNG)
	if meta.err != nil {
		return nil, meta.err
	}
	if want := cfg.Epoch(step); epoch != want {
		return nil, fmt.Errorf("%w: metadata %s = %d, but step %d is in epoch %d", ErrInvalidCheckpoint, metaEpoch, epoch, step, want)
	}

	var pcg rand.PCG
	if err := pcg.UnmarshalBinary(rngState); err != nil {
		return nil, fmt.Errorf("%w: metadata %s: %w", ErrInvalidCheckpoint, metaRNG, err)
	}
	// Check every tensor before building graphs, so a bad file costs no
	// graph construction.
	poolShape := func(count int64) []int { return []int{int(count), 3, cfg.CropSize, cfg.CropSize} }
	for name, shape := range expectedTensors(cfg) {
		if _, err := lookupTensor(tensors, name, shape); err != nil {
			return nil, err
		}
	}
	if _, err := lookupTensor(tensors, poolATensor, poolShape(countA)); err != nil {
		return nil, err
	}
	if _, err := lookupTensor(tensors, poolBTensor, poolShape(countB)); err != nil {
		return nil, err
	}

	m, err := build(cfg)
	if err != nil {
		return nil, err
	}
	for _, spec := range m.weights.specs {
		copy(m.weights.data(spec.name), tensors[spec.name].data)
	}
	for _, a := range []*adam{m.adamG, m.adamD} {
		for i, name := range a.names {
			copy(a.m[i], tensors["adam.m."+name].data)
			copy(a.v[i], tensors["adam.v."+name].data)
		}
	}
	m.poolA.restore(tensors[poolATensor].data)
	m.poolB.restore(tensors[poolBTensor].data)
	*m.pcg = pcg
	m.step = step
	m.adamG.step = adamGStep
	m.adamD.step = adamDStep
	m.nonFiniteStreak = int(streak)
	return m, nil
}

// checkpointConfig decodes and validates the config in a checkpoint's
// metadata. Unknown fields are rejected, so a file written for another
// model is not misread.
func checkpointConfig(metadata map[string]string) (Config, error) {
	if f := metadata[metaFormat]; f != checkpointFormat {
		return Config{}, fmt.Errorf("%w: metadata %s is %q, want %q", ErrInvalidCheckpoint, metaFormat, f, checkpointFormat)
	}
	raw, ok := metadata[metaConfig]
	if !ok {
		return Config{}, fmt.Errorf("%w: metadata %s is missing", ErrInvalidCheckpoint, metaConfig)
	}
	var cfg Config
	decoder := json.NewDecoder(strings.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%w: metadata %s: %w", ErrInvalidCheckpoint, metaConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: metadata %s: %w", ErrInvalidCheckpoint, metaConfig, err)
	}
	return cfg, nil
}

// expectedTensors returns the shape of every weight and Adam moment in a
// checkpoint of cfg, by name.
func expectedTensors(cfg Config) map[string][]int {
	shapes := map[string][]int{}
	for _, network := range networkNames {
		for _, spec := range networkWeights(cfg, network) {
			shapes[spec.name] = spec.shape
			shapes["adam.m."+spec.name] = spec.shape
			shapes["adam.v."+spec.name] = spec.shape
		}
	}
	return shapes
}

// checkNames rejects tensors that a checkpoint of cfg does not contain.
func checkNames(cfg Config, tensors map[string]namedTensor) error {
	known := expectedTensors(cfg)
	for name := range tensors {
		if _, ok := known[name]; !ok && name != poolATensor && name != poolBTensor {
			return fmt.Errorf("%w: unknown tensor %s for the stored config", ErrInvalidCheckpoint, name)
		}
	}
	return nil
}

// metadataReader parses metadata values, keeping the first error.
type metadataReader struct {
	metadata map[string]string
	err      error
}

func (r *metadataReader) int(description, key string, low, high int64) int64 {
	if r.err != nil {
		return 0
	}
	raw, ok := r.metadata[key]
	if !ok {
		r.err = fmt.Errorf("%w: metadata %s (%s) is missing", ErrInvalidCheckpoint, key, description)
		return 0
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < low || v > high {
		r.err = fmt.Errorf("%w: metadata %s (%s) is %q, want an integer in [%d, %d]", ErrInvalidCheckpoint, key, description, raw, low, high)
		return 0
	}
	return v
}

func (r *metadataReader) base64(description, key string) []byte {
	if r.err != nil {
		return nil
	}
	raw, ok := r.metadata[key]
	if !ok {
		r.err = fmt.Errorf("%w: metadata %s (%s) is missing", ErrInvalidCheckpoint, key, description)
		return nil
	}
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		r.err = fmt.Errorf("%w: metadata %s (%s): %w", ErrInvalidCheckpoint, key, description, err)
		return nil
	}
	return bytes.Clone(data)
}
