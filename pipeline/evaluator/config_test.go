package evaluator

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gocyclegan/cyclegan/pipeline"
)

func TestConfigFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"CYCLEGAN_EVAL_SAMPLES": "4", "CYCLEGAN_OUTPUT": "from-env"}
	cfg := DefaultConfig()
	f := pipeline.NewFlagSet("evaluator", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg.Register(f)
	if err := f.Parse([]string{"--output", "out", "--dataset", "/data/set"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Samples != 4 || cfg.Output != "out" || cfg.Dataset != "/data/set" {
		t.Errorf("config = %+v, want samples 4 from the environment, output and dataset from flags", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"max samples", func(c *Config) { c.Samples = maxSamples }, true},
		{"no samples", func(c *Config) { c.Samples = 0 }, false},
		{"too many samples", func(c *Config) { c.Samples = maxSamples + 1 }, false},
		{"empty output", func(c *Config) { c.Output = "" }, false},
		{"negative drain timeout", func(c *Config) { c.DrainTimeout = -1 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if c.ok && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigOpenDataset(t *testing.T) {
	bundled := DefaultConfig()
	fsys, err := bundled.OpenDataset()
	if err != nil {
		t.Fatalf("bundled dataset: %v", err)
	}
	if _, err := fsys.Open(TestDirA); err != nil {
		t.Errorf("bundled dataset has no %s: %v", TestDirA, err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), file} {
		cfg := DefaultConfig()
		cfg.Dataset = path
		if _, err := cfg.OpenDataset(); err == nil {
			t.Errorf("OpenDataset(%s) returned no error", path)
		}
	}
}
