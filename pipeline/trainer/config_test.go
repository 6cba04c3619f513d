package trainer

import (
	"errors"
	"slices"
	"testing"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"reference preset", func(c *Config) { c.Preset = model.PresetReference }, true},
		{"unknown preset", func(c *Config) { c.Preset = "huge" }, false},
		{"crop not a multiple of 4", func(c *Config) { c.CropSize = 30 }, false},
		{"crop below the discriminator's minimum", func(c *Config) { c.CropSize = 16 }, false},
		{"batch 0", func(c *Config) { c.BatchSize = 0 }, false},
		{"negative steps", func(c *Config) { c.Steps = -1 }, false},
		{"checkpoint every 0", func(c *Config) { c.CheckpointEvery = 0 }, false},
		{"log every 0", func(c *Config) { c.LogEvery = 0 }, false},
		{"keep last 0", func(c *Config) { c.Retention.KeepLast = 0 }, false},
		{"empty output", func(c *Config) { c.Output = "" }, false},
		{"dataset size 0", func(c *Config) { c.DatasetSize = 0 }, false},
		{"learning rate 0", func(c *Config) { c.LearningRate = 0 }, false},
		{"no epochs", func(c *Config) { c.Epochs, c.EpochsDecay = 0, 0 }, false},
		{"negative seed", func(c *Config) { c.Seed = -1 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.change(&cfg)
			err := cfg.Validate()
			if c.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate returned %v, want an error wrapping ErrInvalidConfig", err)
			}
		})
	}
}

func TestModelConfigOverrides(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CropSize, cfg.NGF, cfg.NDF, cfg.Blocks = 96, 8, 16, 2
	cfg.BatchSize, cfg.DatasetSize = 4, 100
	mc, err := cfg.ModelConfig()
	if err != nil {
		t.Fatalf("ModelConfig: %v", err)
	}
	if mc.CropSize != 96 || mc.LoadSize != 96 {
		t.Errorf("crop %d load %d, want 96 and 96 (the load size grows to the crop)", mc.CropSize, mc.LoadSize)
	}
	if mc.NGF != 8 || mc.NDF != 16 || mc.Blocks != 2 || mc.BatchSize != 4 || mc.DatasetSize != 100 {
		t.Errorf("model config %+v does not carry the settings", mc)
	}

	preset, err := model.Preset(model.PresetCPU)
	if err != nil {
		t.Fatal(err)
	}
	defaults := DefaultConfig()
	mc, err = defaults.ModelConfig()
	if err != nil {
		t.Fatalf("ModelConfig of the defaults: %v", err)
	}
	preset.DatasetSize = BundledDatasetSize
	if mc != preset {
		t.Errorf("default model config %+v, want the cpu preset %+v", mc, preset)
	}
}

func TestTotalSteps(t *testing.T) {
	cases := []struct {
		name                        string
		steps, epochs, decay, batch int
		dataset                     int
		want                        int64
	}{
		{"steps win", 7, 100, 100, 1, 1483, 7},
		{"bundled schedule", 0, 100, 100, 1, 1483, 296600},
		{"batch divides", 0, 1, 1, 2, 10, 10},
		{"batch rounds up", 0, 1, 0, 4, 10, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Steps: c.steps}
			mc := model.Config{Epochs: c.epochs, EpochsDecay: c.decay, BatchSize: c.batch, DatasetSize: c.dataset}
			got := cfg.totalSteps(mc)
			if got != c.want {
				t.Fatalf("totalSteps = %d, want %d", got, c.want)
			}
			if c.steps == 0 && mc.Epoch(got) != int64(c.epochs+c.decay) {
				t.Errorf("step %d is in epoch %d, want the first step after the schedule", got, mc.Epoch(got))
			}
			if c.steps == 0 && mc.Epoch(got-1) != int64(c.epochs+c.decay-1) {
				t.Errorf("step %d is in epoch %d, want the schedule's last epoch", got-1, mc.Epoch(got-1))
			}
		})
	}
}

func TestConfigDifferences(t *testing.T) {
	a, err := model.Preset(model.PresetCPU)
	if err != nil {
		t.Fatal(err)
	}
	b := a
	if diffs := configDifferences(a, b); len(diffs) != 0 {
		t.Errorf("equal configs differ in %v", diffs)
	}
	b.NGF, b.LearningRate = 64, 1e-3
	want := []string{"ngf: checkpoint 32, settings 64", "lr: checkpoint 0.0002, settings 0.001"}
	if diffs := configDifferences(a, b); !slices.Equal(diffs, want) {
		t.Errorf("differences %q, want %q", diffs, want)
	}
}

func TestConfigRegisterReadsEnvironment(t *testing.T) {
	env := map[string]string{
		"CYCLEGAN_CHECKPOINT_EVERY":     "250",
		"CYCLEGAN_STEPS":                "1000",
		"CYCLEGAN_CHECKPOINT_KEEP_LAST": "5",
	}
	cfg := DefaultConfig()
	flags := pipeline.NewFlagSet("trainer", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg.Register(flags)
	if err := flags.Parse([]string{"--steps", "20", "--preset", "reference", "--fresh"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.CheckpointEvery != 250 || cfg.Retention.KeepLast != 5 {
		t.Errorf("checkpoint every %d keep last %d, want 250 and 5 from the environment", cfg.CheckpointEvery, cfg.Retention.KeepLast)
	}
	if cfg.Steps != 20 || cfg.Preset != model.PresetReference || !cfg.Fresh {
		t.Errorf("steps %d preset %q fresh %v, want the flags' 20, reference, true", cfg.Steps, cfg.Preset, cfg.Fresh)
	}

	cfg = DefaultConfig()
	flags = pipeline.NewFlagSet("trainer", func(string) (string, bool) { return "", false })
	cfg.Register(flags)
	if err := flags.Parse([]string{"--crop-size", "30"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Parse with --crop-size 30 returned %v, want an error wrapping ErrInvalidConfig", err)
	}
}
