package model

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// tinyConfig is a small model that trains in tens of milliseconds a step.
func tinyConfig() Config {
	cfg, _ := Preset(PresetCPU)
	cfg.Preset = "tiny"
	cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks = 32, 32, 8, 8, 2
	cfg.DatasetSize = 20
	return cfg
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

// randomImages returns n images of imageLen uniform pixels in [-1, 1).
func randomImages(rng *rand.Rand, n, imageLen int) []float32 {
	data := make([]float32, n*imageLen)
	for i := range data {
		data[i] = float32(rng.Float64()*2 - 1)
	}
	return data
}

func newTestModel(t testing.TB, cfg Config, seed uint64) *CycleGAN {
	t.Helper()
	m, err := New(cfg, seed)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// trainSteps runs n steps on images drawn from rng.
func trainSteps(t testing.TB, m *CycleGAN, rng *rand.Rand, n int) StepResult {
	t.Helper()
	var result StepResult
	for range n {
		a := randomImages(rng, m.cfg.BatchSize, m.cfg.imageLen())
		b := randomImages(rng, m.cfg.BatchSize, m.cfg.imageLen())
		var err error
		if result, err = m.Step(a, b); err != nil {
			t.Fatalf("step %d: %v", m.step, err)
		}
	}
	return result
}

func TestNewIsReproducible(t *testing.T) {
	cfg := tinyConfig()
	a := newTestModel(t, cfg, 5)
	b := newTestModel(t, cfg, 5)
	c := newTestModel(t, cfg, 6)
	name := "G_A.model.1.weight"
	if !slices.Equal(a.weights.data(name), b.weights.data(name)) {
		t.Error("same seed gave different weights")
	}
	if slices.Equal(a.weights.data(name), c.weights.data(name)) {
		t.Error("different seeds gave the same weights")
	}
	var sum, sumSquares float64
	data := a.weights.data("G_A.model.10.conv_block.1.weight")
	for _, v := range data {
		sum += float64(v)
		sumSquares += float64(v) * float64(v)
	}
	mean := sum / float64(len(data))
	std := math.Sqrt(sumSquares/float64(len(data)) - mean*mean)
	if math.Abs(mean) > 0.002 || math.Abs(std-0.02) > 0.002 {
		t.Errorf("weights have mean %.4f and standard deviation %.4f, want 0 and 0.02", mean, std)
	}
	if slices.ContainsFunc(a.weights.data("G_A.model.1.bias"), func(v float32) bool { return v != 0 }) {
		t.Error("biases are not zero")
	}
}

func TestStepReportsProgress(t *testing.T) {
	cfg := tinyConfig()
	cfg.DatasetSize = 2
	cfg.Epochs, cfg.EpochsDecay = 1, 1
	m := newTestModel(t, cfg, 1)
	rng := newTestRand(1)
	want := []struct {
		step, epoch int64
		lr          float64
	}{
		{1, 0, 2e-4},
		{2, 0, 2e-4},
		{3, 1, 1e-4}, // epochs_decay 1: half the rate in epoch 1
		{4, 1, 1e-4},
		{5, 2, 0},
	}
	before := slices.Clone(m.weights.data("D_B.model.11.weight"))
	for _, w := range want {
		result := trainSteps(t, m, rng, 1)
		if result.Step != w.step || result.Epoch != w.epoch || math.Abs(result.LearningRate-w.lr) > 1e-15 {
			t.Errorf("step %d: got step %d, epoch %d, lr %g; want epoch %d, lr %g",
				w.step, result.Step, result.Epoch, result.LearningRate, w.epoch, w.lr)
		}
		for i, v := range result.Losses {
			if !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("step %d: loss %s = %v, want positive and finite", w.step, LossNames[i], v)
			}
		}
	}
	if slices.Equal(before, m.weights.data("D_B.model.11.weight")) {
		t.Error("discriminator weights did not change")
	}
	if m.adamG.step != 5 || m.adamD.step != 5 {
		t.Errorf("Adam steps = %d, %d, want 5", m.adamG.step, m.adamD.step)
	}
}

func TestStepWithoutIdentityLoss(t *testing.T) {
	cfg := tinyConfig()
	cfg.LambdaIdentity = 0
	cfg.PoolSize = 0
	m := newTestModel(t, cfg, 1)
	result := trainSteps(t, m, newTestRand(2), 2)
	if result.Losses.Get(LossIdtA) != 0 || result.Losses.Get(LossIdtB) != 0 {
		t.Errorf("identity losses = %v, %v, want 0", result.Losses.Get(LossIdtA), result.Losses.Get(LossIdtB))
	}
	if !(result.Losses.Get(LossCycleA) > 0) {
		t.Errorf("cycle_A = %v, want positive", result.Losses.Get(LossCycleA))
	}
}

func TestStepRejectsBadBatch(t *testing.T) {
	cfg := tinyConfig()
	m := newTestModel(t, cfg, 1)
	good := make([]float32, cfg.imageLen())
	withNaN := slices.Clone(good)
	withNaN[7] = float32(math.NaN())
	cases := []struct {
		name         string
		realA, realB []float32
	}{
		{"short A", good[:10], good},
		{"long B", good, append(slices.Clone(good), 0)},
		{"NaN in B", good, withNaN},
		{"Inf in A", append(slices.Clone(good[:len(good)-1]), float32(math.Inf(1))), good},
	}
	for _, c := range cases {
		if _, err := m.Step(c.realA, c.realB); !errors.Is(err, ErrInvalidBatch) {
			t.Errorf("%s: error = %v, want ErrInvalidBatch", c.name, err)
		}
	}
	if m.step != 0 {
		t.Errorf("step = %d after rejected batches, want 0", m.step)
	}
}

// modelState returns the checkpoint bytes, which hold everything a step
// may change.
func modelState(t *testing.T, m *CycleGAN) []byte {
	t.Helper()
	data, err := m.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return data
}

// A non-finite generator loss must skip the step and leave every piece of
// state alone; ten in a row return ErrTooManyNonFinite; a good step after
// that resets the count.
func TestStepSkipsNonFiniteGeneratorLoss(t *testing.T) {
	cfg := tinyConfig()
	m := newTestModel(t, cfg, 1)
	rng := newTestRand(3)
	trainSteps(t, m, rng, 2)

	// A huge output bias makes D_A's squared error overflow float32.
	bias := m.weights.data("D_A.model.11.bias")
	saved := bias[0]
	bias[0] = 1e30
	before := modelState(t, m)
	a := randomImages(rng, 1, cfg.imageLen())
	b := randomImages(rng, 1, cfg.imageLen())
	for i := 1; i <= MaxNonFiniteSteps; i++ {
		_, err := m.Step(a, b)
		var nonFinite *NonFiniteError
		if !errors.As(err, &nonFinite) {
			t.Fatalf("skip %d: error = %v, want a *NonFiniteError", i, err)
		}
		if nonFinite.Name != LossGA || nonFinite.Step != 2 {
			t.Errorf("skip %d: error names %s at step %d, want %s at step 2", i, nonFinite.Name, nonFinite.Step, LossGA)
		}
		if tooMany := errors.Is(err, ErrTooManyNonFinite); tooMany != (i == MaxNonFiniteSteps) {
			t.Errorf("skip %d: errors.Is(ErrTooManyNonFinite) = %v", i, tooMany)
		}
	}
	after := modelState(t, m)
	// Only the streak counter in the metadata may differ.
	m.nonFiniteStreak = 0
	if !bytes.Equal(modelState(t, m), resetStreak(t, before)) {
		t.Error("skipped steps changed the training state")
	}
	if bytes.Equal(before, after) {
		t.Error("the checkpoint does not record the non-finite streak")
	}

	bias[0] = saved
	m.nonFiniteStreak = MaxNonFiniteSteps
	if _, err := m.Step(a, b); err != nil {
		t.Fatalf("step after restoring the bias: %v", err)
	}
	if m.nonFiniteStreak != 0 || m.step != 3 {
		t.Errorf("after a good step: streak %d, step %d, want 0 and 3", m.nonFiniteStreak, m.step)
	}
}

// resetStreak returns a checkpoint of the same state with a zero streak.
func resetStreak(t *testing.T, checkpoint []byte) []byte {
	t.Helper()
	m, err := Resume(checkpoint)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	defer m.Close()
	m.nonFiniteStreak = 0
	return modelState(t, m)
}

// A non-finite discriminator loss comes after the pools were queried, so
// skipping must also undo the pool changes and the pool random state.
func TestStepSkipsNonFiniteDiscriminatorLoss(t *testing.T) {
	cfg := tinyConfig()
	cfg.GANMode = GANVanilla
	cfg.PoolSize = 2 // full after two steps, so the next queries swap images
	m := newTestModel(t, cfg, 1)
	rng := newTestRand(4)
	trainSteps(t, m, rng, 3)

	// In vanilla mode a logit of 3e38 costs D_A softplus(3e38), whose mean
	// over the patch map overflows, while G_A's softplus(−3e38) is 0.
	m.weights.data("D_A.model.11.bias")[0] = 3e38
	before := modelState(t, m)
	for i := range 6 {
		_, err := m.Step(randomImages(rng, 1, cfg.imageLen()), randomImages(rng, 1, cfg.imageLen()))
		var nonFinite *NonFiniteError
		if !errors.As(err, &nonFinite) || nonFinite.Name != LossDA {
			t.Fatalf("skip %d: error = %v, want a *NonFiniteError for %s", i, err, LossDA)
		}
	}
	m.nonFiniteStreak = 0
	if !bytes.Equal(modelState(t, m), resetStreak(t, before)) {
		t.Error("skipped discriminator steps changed the training state (pools or their random state)")
	}
}

func TestCheckpointRejectsNonFiniteState(t *testing.T) {
	m := newTestModel(t, tinyConfig(), 1)
	m.weights.data("G_B.model.4.weight")[3] = float32(math.Inf(-1))
	if _, err := m.Checkpoint(); !errors.Is(err, ErrNonFiniteState) {
		t.Errorf("Checkpoint error = %v, want ErrNonFiniteState", err)
	}
}

// Training k steps, saving, resuming from the bytes and training m more
// must give bit-identical state to k+m steps without stopping: the ops are
// deterministic and the pools' random state is saved.
func TestResumeIsExact(t *testing.T) {
	const k, more = 60, 5
	cfg := tinyConfig()
	inputs := newTestRand(11)
	batches := make([][2][]float32, k+more)
	for i := range batches {
		batches[i] = [2][]float32{randomImages(inputs, 1, cfg.imageLen()), randomImages(inputs, 1, cfg.imageLen())}
	}
	run := func(m *CycleGAN, from, to int) {
		for _, batch := range batches[from:to] {
			if _, err := m.Step(batch[0], batch[1]); err != nil {
				t.Fatalf("step %d: %v", m.step, err)
			}
		}
	}

	straight := newTestModel(t, cfg, 21)
	run(straight, 0, k+more)

	first := newTestModel(t, cfg, 21)
	run(first, 0, k)
	saved := modelState(t, first)
	if len(first.poolA.images) != cfg.PoolSize {
		t.Fatalf("pool A holds %d images after %d steps, want it full (%d)", len(first.poolA.images), k, cfg.PoolSize)
	}
	resumed, err := Resume(saved)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	t.Cleanup(func() { _ = resumed.Close() })
	if !bytes.Equal(modelState(t, resumed), saved) {
		t.Fatal("a resumed model does not save the bytes it was loaded from")
	}
	run(resumed, k, k+more)

	for _, spec := range straight.weights.specs {
		if d, i := maxAbsDiff(resumed.weights.data(spec.name), straight.weights.data(spec.name)); d != 0 {
			t.Errorf("%s differs by %.3g at %d", spec.name, d, i)
		}
	}
	if !bytes.Equal(modelState(t, resumed), modelState(t, straight)) {
		t.Error("resumed training state (moments, pools, counters) differs from uninterrupted training")
	}
}
