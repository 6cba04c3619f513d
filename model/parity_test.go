package model

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The fixture comes from testdata/parity/make_fixture.py: one training step
// of a tiny CycleGAN in PyTorch 1.13, float32.
const parityFixture = "testdata/parity/fixture.safetensors"

// parityMinKinkMargin is the smallest distance from a ReLU, LeakyReLU or L1
// kink (see make_fixture.py) that the fixture may have. The float32 rounding
// noise of the layers before a kink measured up to 6e-6 between the gonum and
// AVX-512 kernels. A value closer to its kink than that falls on either side
// depending on summation order, which changes upstream gradients by percents.
const parityMinKinkMargin = 1e-5

// Tolerances of the PyTorch comparison, absolute, float32 on both sides.
const (
	parityOutputTol = 1e-4 // generator and discriminator outputs
	parityLossTol   = 1e-4
	// Gradients differ by orders of magnitude between layers, so their
	// tolerance is relative to the tensor's largest element.
	parityGradTol = 1e-4
	// A bias feeding an instance norm has an analytically zero gradient,
	// which both sides compute as rounding noise; it must stay below this.
	parityZeroGradTol = 1e-4
	// Adam's first step moves a weight by lr·g/(|g|+ε), about lr·sign(g).
	// Where the gradient is clearly non-zero, both sides must agree to
	// float32 rounding of the weight…
	parityWeightTol = 1e-6
	// …but where |g| is within the gradient noise of 0, the direction is
	// arbitrary, so the weights may differ by up to 2·lr.
	parityUndeterminedTol = 2 * 2e-4 * 1.001
	// An element's gradient counts as clearly non-zero when it is at least
	// 1e-3 of the tensor's largest gradient (well above the measured noise
	// of about 3e-6 of it) and at least 100·ε of Adam.
	parityDeterminedRel = 1e-3
	parityDeterminedAbs = 1e-6
)

func parityConfig() Config {
	cfg, _ := Preset(PresetCPU)
	cfg.Preset = "parity"
	cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks = 32, 32, 8, 8, 2
	cfg.DatasetSize = 1
	return cfg
}

func loadParityFixture(t *testing.T) map[string]namedTensor {
	t.Helper()
	data, err := os.ReadFile(parityFixture)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	tensors, meta, err := decodeSafetensors(data)
	if err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	margin, err := strconv.ParseFloat(meta["kink_margin"], 64)
	if err != nil || !(margin >= parityMinKinkMargin) {
		t.Fatalf("invalid fixture kink margin %q, expected a number ≥ %g: regenerate the fixture with make_fixture.py", meta["kink_margin"], parityMinKinkMargin)
	}
	return tensors
}

// newParityModel builds the tiny model with the fixture's initial weights.
func newParityModel(t *testing.T, cfg Config, fixture map[string]namedTensor) *CycleGAN {
	t.Helper()
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.weights.load(fixture); err != nil {
		t.Fatalf("load fixture weights: %v", err)
	}
	return m
}

// maxAbsDiff returns max |a−b| and its index.
func maxAbsDiff(a, b []float32) (float64, int) {
	var worst float64
	var at int
	for i := range a {
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

func assertClose(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(got), len(want))
		return
	}
	d, i := maxAbsDiff(got, want)
	t.Logf("%s: max |diff| %.2g", name, d)
	if !(d <= tol) {
		t.Errorf("%s: max |diff| %.3g at %d (got %v, want %v), tolerance %.1g", name, d, i, got[i], want[i], tol)
	}
}

func TestParityForward(t *testing.T) {
	cfg := parityConfig()
	fixture := loadParityFixture(t)
	m := newParityModel(t, cfg, fixture)
	translator := m.Translator()
	t.Cleanup(func() { _ = translator.Close() })
	side := cfg.CropSize
	realA, realB := fixture["input.real_A"].data, fixture["input.real_B"].data

	fakeB, recA, err := translator.Cycle(AtoB, realA, side, side)
	if err != nil {
		t.Fatalf("Cycle AtoB: %v", err)
	}
	fakeA, recB, err := translator.Cycle(BtoA, realB, side, side)
	if err != nil {
		t.Fatalf("Cycle BtoA: %v", err)
	}
	idtA, err := translator.Translate(AtoB, realB, side, side)
	if err != nil {
		t.Fatalf("Translate idt_A: %v", err)
	}
	idtB, err := translator.Translate(BtoA, realA, side, side)
	if err != nil {
		t.Fatalf("Translate idt_B: %v", err)
	}
	for name, got := range map[string][]float32{
		"fake_B": fakeB, "rec_A": recA, "fake_A": fakeA, "rec_B": recB, "idt_A": idtA, "idt_B": idtB,
	} {
		assertClose(t, name, got, fixture["out."+name].data, parityOutputTol)
	}

	for _, c := range []struct {
		network, input string
		image          []float32
	}{
		{netDA, "fake_B", fixture["out.fake_B"].data},
		{netDB, "fake_A", fixture["out.fake_A"].data},
		{netDA, "real_B", realB},
		{netDB, "real_A", realA},
	} {
		got := runNetwork(t, cfg, m.weights, c.network, c.image, side)
		name := c.network + "." + c.input
		assertClose(t, name, got, fixture["out."+name].data, parityOutputTol)
	}
}

// runNetwork applies one network of weights to a [1, 3, side, side] image.
func runNetwork(t *testing.T, cfg Config, weights *weightSet, network string, image []float32, side int) []float32 {
	t.Helper()
	b := newGraphBuilder(weights)
	x, input := b.input("x", 1, 3, side, side)
	y, err := b.network(cfg, network, x)
	if err != nil {
		t.Fatalf("build %s: %v", network, err)
	}
	var r reader
	out := r.read(y)
	g := compile(b, r.nodes)
	defer g.close()
	copy(input, image)
	if err := g.run(); err != nil {
		t.Fatalf("run %s: %v", network, err)
	}
	return append([]float32(nil), out.floats()...)
}

func TestParityTrainingStep(t *testing.T) {
	cfg := parityConfig()
	fixture := loadParityFixture(t)
	m := newParityModel(t, cfg, fixture)

	result, err := m.Step(fixture["input.real_A"].data, fixture["input.real_B"].data)
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	for i, name := range LossNames {
		want := float64(fixture["loss."+name].data[0])
		t.Logf("loss %s = %.7g, PyTorch %.7g", name, result.Losses[i], want)
		if d := math.Abs(result.Losses[i] - want); !(d <= parityLossTol) {
			t.Errorf("loss %s = %.7g, PyTorch %.7g (|diff| %.2g)", name, result.Losses[i], want, d)
		}
	}

	grads := map[string][]float32{}
	for i, name := range m.generatorNames {
		grads[name] = m.gen.grads.data[i]
	}
	for i, name := range m.discriminatorNames {
		grads[name] = m.disc.grads.data[i]
	}
	for _, spec := range m.weights.specs {
		want, ok := fixture["grad."+spec.name]
		if !ok {
			t.Fatalf("fixture lacks grad.%s", spec.name)
		}
		scale := maxAbs(want.data)
		if feedsInstanceNorm(cfg, spec.name) {
			if got := maxAbs(grads[spec.name]); !(got <= parityZeroGradTol) || !(scale <= parityZeroGradTol) {
				t.Errorf("gradient of %s: largest element %.3g, PyTorch %.3g, want both ≈ 0", spec.name, got, scale)
			}
			continue
		}
		t.Logf("gradient of %s: largest element %.3g", spec.name, scale)
		assertClose(t, "gradient of "+spec.name, grads[spec.name], want.data, parityGradTol*scale)
	}

	undetermined, total := 0, 0
	for _, spec := range m.weights.specs {
		got, want := m.weights.data(spec.name), fixture["after."+spec.name].data
		grad := fixture["grad."+spec.name].data
		threshold := max(parityDeterminedRel*maxAbs(grad), parityDeterminedAbs)
		noise := feedsInstanceNorm(cfg, spec.name)
		worst := 0.0
		for i := range got {
			total++
			d := math.Abs(float64(got[i]) - float64(want[i]))
			tol := parityWeightTol
			if noise || math.Abs(float64(grad[i])) < threshold {
				undetermined++
				tol = parityUndeterminedTol
			} else {
				worst = max(worst, d)
			}
			if !(d <= tol) {
				t.Errorf("weight after step %s[%d] = %v, PyTorch %v, gradient %.3g: |diff| %.3g > %.3g",
					spec.name, i, got[i], want[i], grad[i], d, tol)
				break
			}
		}
		t.Logf("weight after step %s: max |diff| %.2g where the gradient is clearly non-zero", spec.name, worst)
	}
	t.Logf("%d of %d weights have a gradient too close to 0 to fix Adam's direction", undetermined, total)
	if undetermined > total/20 {
		t.Errorf("%d of %d weights have a near-zero gradient, want under 5%%", undetermined, total)
	}
}

func maxAbs(data []float32) float64 {
	m := 0.0
	for _, v := range data {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// feedsInstanceNorm reports whether name is the bias of a convolution
// followed by instance norm, whose gradient is 0 up to rounding.
func feedsInstanceNorm(cfg Config, name string) bool {
	network, rest, _ := strings.Cut(name, ".")
	for _, l := range networkLayers(cfg, network) {
		if rest == l.key+".bias" {
			return slices.Contains([]after{afterNorm, afterNormReLU, afterNormLeakyReLU}, l.after)
		}
	}
	return false
}

func TestParityVanillaLosses(t *testing.T) {
	cfg := parityConfig()
	cfg.GANMode = GANVanilla
	fixture := loadParityFixture(t)
	m := newParityModel(t, cfg, fixture)

	result, err := m.Step(fixture["input.real_A"].data, fixture["input.real_B"].data)
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	for _, name := range []string{LossDA, LossGA, LossDB, LossGB} {
		want := float64(fixture["vanilla."+name].data[0])
		if d := math.Abs(result.Losses.Get(name) - want); !(d <= parityLossTol) {
			t.Errorf("vanilla loss %s = %.7g, PyTorch %.7g", name, result.Losses.Get(name), want)
		}
	}
}
