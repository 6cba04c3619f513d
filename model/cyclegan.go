package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Loss names, as in the reference implementation's logs.
const (
	LossDA     = "D_A"     // 0.5·(GAN(D_A(real_B), 1) + GAN(D_A(pool(fake_B)), 0))
	LossGA     = "G_A"     // GAN(D_A(G_A(real_A)), 1)
	LossCycleA = "cycle_A" // λ_A·mean|G_B(G_A(real_A)) − real_A|
	LossIdtA   = "idt_A"   // λ_B·λ_identity·mean|G_A(real_B) − real_B|
	LossDB     = "D_B"     // 0.5·(GAN(D_B(real_A), 1) + GAN(D_B(pool(fake_A)), 0))
	LossGB     = "G_B"     // GAN(D_B(G_B(real_B)), 1)
	LossCycleB = "cycle_B" // λ_B·mean|G_A(G_B(real_B)) − real_B|
	LossIdtB   = "idt_B"   // λ_A·λ_identity·mean|G_B(real_A) − real_A|
)

// LossNames lists the eight losses in the reference implementation's order.
var LossNames = [8]string{LossDA, LossGA, LossCycleA, LossIdtA, LossDB, LossGB, LossCycleB, LossIdtB}

// Losses holds the eight losses of one step, indexed like LossNames.
type Losses [8]float64

// Get returns the loss with the given name, or NaN for an unknown name.
func (l Losses) Get(name string) float64 {
	for i, n := range LossNames {
		if n == name {
			return l[i]
		}
	}
	return math.NaN()
}

func (l *Losses) set(name string, v float64) {
	for i, n := range LossNames {
		if n == name {
			l[i] = v
		}
	}
}

// StepResult describes one applied training step.
type StepResult struct {
	Losses       Losses
	Step         int64   // updates applied so far, this one included
	Epoch        int64   // 0-based epoch the step belonged to
	LearningRate float64 // learning rate the step used
}

// CycleGAN is the whole training state: the four networks, both Adam
// optimisers, both image pools, the random source of the pools and the
// step count. It is not safe for concurrent use.
type CycleGAN struct {
	cfg     Config
	weights *weightSet

	generatorNames     []string // G_A then G_B weights, the order of adamG
	discriminatorNames []string // D_A then D_B weights, the order of adamD
	adamG, adamD       *adam

	// poolA keeps generated A images (fake_A, judged by D_B); poolB keeps
	// generated B images (fake_B, judged by D_A).
	poolA, poolB *imagePool
	pcg          *rand.PCG
	rng          *rand.Rand // draws from pcg; used by the pools only

	step            int64 // updates applied
	nonFiniteStreak int   // consecutive skipped steps

	gen    *generatorStep
	disc   *discriminatorStep
	params [][]float32 // reused list of weight slices for adam.update

	editsA, editsB []poolEdit // reused lists of one step's pool edits
}

// New builds a CycleGAN from a valid config, with weights drawn from a
// normal distribution (mean 0, standard deviation 0.02) and zero biases.
// The same seed gives the same weights and the same image-pool choices.
func New(cfg Config, seed uint64) (*CycleGAN, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := build(cfg)
	if err != nil {
		return nil, err
	}
	m.weights.initNormal(rand.New(rand.NewPCG(seed, 0x6379636c6567616e))) // second word: "cyclegan"
	m.pcg.Seed(seed, 0x706f6f6c73)                                        // "pools"
	return m, nil
}

// build allocates the state and compiles both step graphs for cfg, which
// must be valid.
func build(cfg Config) (*CycleGAN, error) {
	m := &CycleGAN{
		cfg:     cfg,
		weights: newWeightSet(cfg, networkNames...),
		poolA:   newImagePool(cfg.PoolSize, cfg.imageLen()),
		poolB:   newImagePool(cfg.PoolSize, cfg.imageLen()),
		pcg:     rand.NewPCG(0, 0),
	}
	m.rng = rand.New(m.pcg)
	m.generatorNames = append(m.weights.names(netGA+"."), m.weights.names(netGB+".")...)
	m.discriminatorNames = append(m.weights.names(netDA+"."), m.weights.names(netDB+".")...)
	m.adamG = newAdam(m.generatorNames, m.sizes(m.generatorNames))
	m.adamD = newAdam(m.discriminatorNames, m.sizes(m.discriminatorNames))

	var err error
	if m.gen, err = buildGeneratorStep(cfg, m.weights, m.generatorNames); err != nil {
		return nil, err
	}
	if m.disc, err = buildDiscriminatorStep(cfg, m.weights, m.discriminatorNames); err != nil {
		return nil, errors.Join(err, m.gen.graph.close())
	}
	return m, nil
}

func (m *CycleGAN) sizes(names []string) []int {
	sizes := make([]int, len(names))
	for i, name := range names {
		sizes[i] = len(m.weights.data(name))
	}
	return sizes
}

// Config returns the configuration the model was built with.
func (m *CycleGAN) Config() Config { return m.cfg }

// Steps returns the number of updates applied so far.
func (m *CycleGAN) Steps() int64 { return m.step }

// Close releases the graphs' machines.
func (m *CycleGAN) Close() error {
	return errors.Join(m.gen.graph.close(), m.disc.graph.close())
}

// Step runs one training step on a batch of real A and real B images, each
// float32 NCHW of shape [batch_size, 3, crop_size, crop_size] with pixels
// in [-1, 1]:
//
//  1. fake_B = G_A(real_A), rec_A = G_B(fake_B), fake_A = G_B(real_B),
//     rec_B = G_A(fake_A), idt_A = G_A(real_B), idt_B = G_B(real_A);
//  2. the generators' gradient of G_A + G_B + cycle_A + cycle_B + idt_A +
//     idt_B, with the discriminators frozen;
//  3. the discriminators' gradient of D_A and D_B, on the real images and
//     on fake_B and fake_A drawn through the image pools;
//  4. an Adam update of each pair of networks.
//
// Both gradients are computed before either update, which equals the
// reference order (generator update, then discriminator update) because
// the generator step never reads discriminator weights that the update
// changed, and the discriminator step uses fakes made before it.
//
// The learning rate is LearningRateAt(Epoch(Steps())). If any loss or
// gradient is NaN or infinite, the step changes nothing (weights, moments,
// step counts, pools and their random source are kept) and Step returns a
// *NonFiniteError; after MaxNonFiniteSteps such steps in a row the error
// also wraps ErrTooManyNonFinite. The caller may keep training either way.
func (m *CycleGAN) Step(realA, realB []float32) (StepResult, error) {
	result := StepResult{Epoch: m.cfg.Epoch(m.step)}
	result.LearningRate = m.cfg.LearningRateAt(result.Epoch)
	if err := m.checkBatch("real_A", realA); err != nil {
		return result, err
	}
	if err := m.checkBatch("real_B", realB); err != nil {
		return result, err
	}
	copy(m.gen.realA, realA)
	copy(m.gen.realB, realB)
	copy(m.disc.realA, realA)
	copy(m.disc.realB, realB)

	m.gen.grads.zero()
	if err := m.gen.graph.run(); err != nil {
		return result, fmt.Errorf("step %d: generator step: %w", m.step, err)
	}
	for name, r := range m.gen.losses {
		result.Losses.set(name, r.scalar())
	}
	if bad := m.firstNonFiniteLoss(result.Losses); bad != nil {
		return result, m.skip(bad)
	}
	if bad := m.firstNonFiniteValue("fake_A", m.gen.fakeA.floats()); bad != nil {
		return result, m.skip(bad)
	}
	if bad := m.firstNonFiniteValue("fake_B", m.gen.fakeB.floats()); bad != nil {
		return result, m.skip(bad)
	}

	// The pools and their random source change here; a later non-finite
	// value undoes both.
	rngState, err := m.pcg.MarshalBinary()
	if err != nil {
		return result, fmt.Errorf("step %d: save pool random state: %w", m.step, err)
	}
	m.editsB = m.poolB.query(m.rng, m.gen.fakeB.floats(), m.disc.pooledB, m.editsB[:0])
	m.editsA = m.poolA.query(m.rng, m.gen.fakeA.floats(), m.disc.pooledA, m.editsA[:0])
	editsA, editsB := m.editsA, m.editsB
	undoPools := func() {
		m.poolA.undo(editsA)
		m.poolB.undo(editsB)
		_ = m.pcg.UnmarshalBinary(rngState) // the state came from MarshalBinary, so it decodes
	}

	m.disc.grads.zero()
	if err := m.disc.graph.run(); err != nil {
		undoPools()
		return result, fmt.Errorf("step %d: discriminator step: %w", m.step, err)
	}
	result.Losses.set(LossDA, m.disc.lossDA.scalar())
	result.Losses.set(LossDB, m.disc.lossDB.scalar())
	bad := m.firstNonFiniteLoss(result.Losses)
	if bad == nil {
		bad = m.firstNonFiniteGradient(m.gen.grads)
	}
	if bad == nil {
		bad = m.firstNonFiniteGradient(m.disc.grads)
	}
	if bad != nil {
		undoPools()
		return result, m.skip(bad)
	}

	m.adamG.update(result.LearningRate, m.cfg.Beta1, m.cfg.Beta2, m.cfg.AdamEpsilon, m.paramData(m.generatorNames), m.gen.grads.data)
	m.adamD.update(result.LearningRate, m.cfg.Beta1, m.cfg.Beta2, m.cfg.AdamEpsilon, m.paramData(m.discriminatorNames), m.disc.grads.data)
	m.poolA.commit(editsA)
	m.poolB.commit(editsB)
	m.step++
	m.nonFiniteStreak = 0
	result.Step = m.step
	return result, nil
}

func (m *CycleGAN) checkBatch(name string, batch []float32) error {
	if want := m.cfg.BatchSize * m.cfg.imageLen(); len(batch) != want {
		return fmt.Errorf("%w: %s has %d values, want %d (batch %d × 3 × %d × %d)",
			ErrInvalidBatch, name, len(batch), want, m.cfg.BatchSize, m.cfg.CropSize, m.cfg.CropSize)
	}
	if i, v, bad := firstNonFinite(batch); bad {
		return fmt.Errorf("%w: %s has the non-finite value %v at index %d", ErrInvalidBatch, name, v, i)
	}
	return nil
}

func (m *CycleGAN) firstNonFiniteLoss(losses Losses) *NonFiniteError {
	for i, v := range losses {
		if !isFinite(v) {
			return &NonFiniteError{Step: m.step, Name: LossNames[i], Value: v}
		}
	}
	return nil
}

func (m *CycleGAN) firstNonFiniteValue(name string, data []float32) *NonFiniteError {
	if _, v, bad := firstNonFinite(data); bad {
		return &NonFiniteError{Step: m.step, Name: name, Value: float64(v)}
	}
	return nil
}

func (m *CycleGAN) firstNonFiniteGradient(grads *gradientSet) *NonFiniteError {
	if at := firstNonFiniteIn(grads.data); at.found {
		return &NonFiniteError{Step: m.step, Name: "grad." + grads.names[at.slice], Value: float64(at.value)}
	}
	return nil
}

// skip counts a skipped step and returns its error.
func (m *CycleGAN) skip(bad *NonFiniteError) error {
	m.nonFiniteStreak++
	if m.nonFiniteStreak >= MaxNonFiniteSteps {
		return fmt.Errorf("%w (%d): %w", ErrTooManyNonFinite, m.nonFiniteStreak, bad)
	}
	return bad
}

func (m *CycleGAN) paramData(names []string) [][]float32 {
	m.params = m.params[:0]
	for _, name := range names {
		m.params = append(m.params, m.weights.data(name))
	}
	return m.params
}
