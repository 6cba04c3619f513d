package model

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestPresetDefaults(t *testing.T) {
	cases := []struct {
		name                         string
		load, crop, ngf, ndf, blocks int
	}{
		{PresetCPU, 72, 64, 32, 32, 6},
		{PresetReference, 286, 256, 64, 64, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Preset(c.name)
			if err != nil {
				t.Fatalf("Preset: %v", err)
			}
			if cfg.LoadSize != c.load || cfg.CropSize != c.crop || cfg.NGF != c.ngf || cfg.NDF != c.ndf || cfg.Blocks != c.blocks {
				t.Errorf("sizes = %d/%d ngf %d ndf %d blocks %d", cfg.LoadSize, cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks)
			}
			if cfg.BatchSize != 1 || cfg.GANMode != GANLeastSquares || cfg.PoolSize != 50 {
				t.Errorf("batch %d, gan %q, pool %d", cfg.BatchSize, cfg.GANMode, cfg.PoolSize)
			}
			if cfg.LambdaA != 10 || cfg.LambdaB != 10 || cfg.LambdaIdentity != 0.5 {
				t.Errorf("lambdas %v %v %v", cfg.LambdaA, cfg.LambdaB, cfg.LambdaIdentity)
			}
			if cfg.LearningRate != 2e-4 || cfg.Beta1 != 0.5 || cfg.Beta2 != 0.999 || cfg.AdamEpsilon != 1e-8 {
				t.Errorf("adam %v %v %v %v", cfg.LearningRate, cfg.Beta1, cfg.Beta2, cfg.AdamEpsilon)
			}
			if cfg.Epochs != 100 || cfg.EpochsDecay != 100 {
				t.Errorf("epochs %d + %d", cfg.Epochs, cfg.EpochsDecay)
			}
			cfg.DatasetSize = 10
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	if _, err := Preset("gpu"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Preset(gpu) error = %v, want ErrInvalidConfig", err)
	}
	if PresetNames()[0] != PresetCPU {
		t.Errorf("default preset = %s, want %s", PresetNames()[0], PresetCPU)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		message string // substring of the error; empty for a valid config
	}{
		{"cpu preset", func(c *Config) {}, ""},
		{"crop minimum 24", func(c *Config) { c.CropSize, c.LoadSize = 24, 24 }, ""},
		{"crop 28", func(c *Config) { c.CropSize = 28 }, ""},
		{"crop 20 too small", func(c *Config) { c.CropSize = 20 }, "crop_size 20 must be a multiple of 4 and at least 24"},
		{"crop 66 not multiple of 4", func(c *Config) { c.CropSize, c.LoadSize = 66, 72 }, "crop_size 66 must be a multiple of 4"},
		{"crop 0", func(c *Config) { c.CropSize = 0 }, "crop_size 0"},
		{"crop huge", func(c *Config) { c.CropSize, c.LoadSize = 4096, 4096 }, "crop_size 4096 exceeds"},
		{"load below crop", func(c *Config) { c.LoadSize = 60 }, "load_size 60"},
		{"ngf 0", func(c *Config) { c.NGF = 0 }, "ngf 0"},
		{"ndf negative", func(c *Config) { c.NDF = -1 }, "ndf -1"},
		{"blocks negative", func(c *Config) { c.Blocks = -1 }, "blocks -1"},
		{"batch 0", func(c *Config) { c.BatchSize = 0 }, "batch_size 0"},
		{"gan mode", func(c *Config) { c.GANMode = "wgan" }, `gan_mode "wgan"`},
		{"lambda NaN", func(c *Config) { c.LambdaA = math.NaN() }, "lambda_A NaN"},
		{"lambda negative", func(c *Config) { c.LambdaIdentity = -1 }, "lambda_identity -1"},
		{"pool negative", func(c *Config) { c.PoolSize = -1 }, "pool_size -1"},
		{"pool disabled", func(c *Config) { c.PoolSize = 0 }, ""},
		{"lr 0", func(c *Config) { c.LearningRate = 0 }, "lr 0"},
		{"beta1 1", func(c *Config) { c.Beta1 = 1 }, "beta1 1"},
		{"adam eps 0", func(c *Config) { c.AdamEpsilon = 0 }, "adam_eps 0"},
		{"no epochs", func(c *Config) { c.Epochs, c.EpochsDecay = 0, 0 }, "epochs 0 and epochs_decay 0"},
		{"dataset size 0", func(c *Config) { c.DatasetSize = 0 }, "dataset_size 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Preset(PresetCPU)
			if err != nil {
				t.Fatal(err)
			}
			cfg.DatasetSize = 100
			c.edit(&cfg)
			err = cfg.Validate()
			if c.message == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Errorf("error %q does not contain %q", err, c.message)
			}
		})
	}
}

// The minimum crop must give the discriminator a non-empty output, and New
// must reject a smaller one before building any graph.
func TestNewCropBounds(t *testing.T) {
	cfg := tinyConfig()
	cfg.CropSize, cfg.LoadSize = MinCropSize, MinCropSize
	if got := discriminatorSide(MinCropSize); got != 1 {
		t.Errorf("discriminator side at crop %d = %d, want 1", MinCropSize, got)
	}
	if got := discriminatorSide(MinCropSize - 4); got >= 1 {
		t.Errorf("discriminator side at crop %d = %d, want < 1", MinCropSize-4, got)
	}
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatalf("New at crop %d: %v", MinCropSize, err)
	}
	defer m.Close()
	image := randomImages(newTestRand(1), 1, cfg.imageLen())
	if _, err := m.Step(image, image); err != nil {
		t.Errorf("Step at crop %d: %v", MinCropSize, err)
	}

	cfg.CropSize, cfg.LoadSize = 20, 20
	if _, err := New(cfg, 1); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New at crop 20: error = %v, want ErrInvalidConfig", err)
	}
}

func TestLearningRateSchedule(t *testing.T) {
	cfg := Config{LearningRate: 2e-4, Epochs: 100, EpochsDecay: 100}
	cases := []struct {
		epoch int64
		want  float64
	}{
		{0, 2e-4},
		{50, 2e-4},
		{99, 2e-4},                   // last constant epoch
		{100, 2e-4 * (1 - 1.0/101)},  // first decayed epoch
		{150, 2e-4 * (1 - 51.0/101)}, //
		{199, 2e-4 / 101},            // last scheduled epoch
		{200, 0},                     // past the schedule
		{1000, 0},                    // clamped, never negative
	}
	for _, c := range cases {
		if got := cfg.LearningRateAt(c.epoch); math.Abs(got-c.want) > 1e-18 {
			t.Errorf("LearningRateAt(%d) = %.10g, want %.10g", c.epoch, got, c.want)
		}
	}

	onlyDecay := Config{LearningRate: 1, Epochs: 0, EpochsDecay: 1}
	if got := onlyDecay.LearningRateAt(0); got != 0.5 {
		t.Errorf("epochs 0 + 1: LearningRateAt(0) = %v, want 0.5", got)
	}
	if got := onlyDecay.LearningRateAt(1); got != 0 {
		t.Errorf("epochs 0 + 1: LearningRateAt(1) = %v, want 0", got)
	}
}

func TestEpochFromStep(t *testing.T) {
	cases := []struct {
		batch, dataset int
		step, want     int64
	}{
		{1, 1483, 0, 0},
		{1, 1483, 1482, 0},
		{1, 1483, 1483, 1},
		{1, 1483, 2 * 1483, 2},
		{4, 10, 2, 0}, // 8 images seen
		{4, 10, 3, 1}, // 12 images seen
		{4, 10, 5, 2}, // 20 images seen
	}
	for _, c := range cases {
		cfg := Config{BatchSize: c.batch, DatasetSize: c.dataset}
		if got := cfg.Epoch(c.step); got != c.want {
			t.Errorf("batch %d, dataset %d: Epoch(%d) = %d, want %d", c.batch, c.dataset, c.step, got, c.want)
		}
	}
}
