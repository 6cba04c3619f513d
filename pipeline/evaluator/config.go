package evaluator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// Test folders of a dataset in the standard CycleGAN layout.
const (
	TestDirA = "testA"
	TestDirB = "testB"
)

// ErrInvalidConfig is returned by Config.Validate.
var ErrInvalidConfig = errors.New("invalid evaluator config")

// Config holds the evaluator's settings.
type Config struct {
	// Dataset is the folder of the dataset whose testA and testB folders are
	// evaluated on. Empty means the bundled dataset.
	Dataset string
	// Output is the folder under which each run's files live, in
	// <Output>/<run>/: samples/step-<n>.png, index.html and metrics.jsonl.
	Output string
	// Samples is the number of test images per domain in each sample grid: the
	// first ones by sorted file name, the same at every step.
	Samples int
	// DrainTimeout bounds the evaluation in progress after the context of Run
	// ends; a stage binary copies it from the common drain-timeout setting.
	// 0 means 30s.
	DrainTimeout time.Duration
	// OnReport, if not nil, is called after each evaluation with the report
	// that was published, from the goroutine of Run. The one-process run
	// draws its progress display from it.
	OnReport func(messages.EvalReport)
}

// DefaultConfig returns the defaults: the bundled dataset, output folder
// "runs" and 6 sample images per domain.
func DefaultConfig() Config {
	return Config{Output: "runs", Samples: 6}
}

// maxSamples bounds Config.Samples, so that a sample grid stays a size a
// browser shows whole.
const maxSamples = 32

// Register declares every setting on f for the evaluator binary, with c's current values
// as defaults.
func (c *Config) Register(f *pipeline.FlagSet) {
	f.String(&c.Dataset, "dataset", "dataset folder with testA and testB (trainA and trainB for the loader); empty uses the bundled emoji dataset", nil)
	f.String(&c.Output, "output", "folder of the runs' output files: <output>/<run>/samples, index.html and metrics.jsonl", nil)
	c.RegisterOwn(f)
}

// RegisterOwn declares the settings that only the evaluator has, and the check of all of
// them. The loader declares a dataset flag and the trainer an output flag with the same
// meaning as the evaluator's. A one-process run therefore registers those two once, calls
// RegisterOwn in place of Register and copies their values into Dataset and Output.
func (c *Config) RegisterOwn(f *pipeline.FlagSet) {
	f.Int(&c.Samples, "eval-samples", "images per domain", fmt.Sprintf("test images per domain in each sample grid, the first ones by sorted name (1 to %d)", maxSamples), nil)
	f.Check(c.Validate)
}

// Validate checks every setting.
func (c *Config) Validate() error {
	var errs []error
	if c.Output == "" {
		errs = append(errs, fmt.Errorf("%w: --output is empty", ErrInvalidConfig))
	}
	if c.Samples < 1 || c.Samples > maxSamples {
		errs = append(errs, fmt.Errorf("%w: --eval-samples %d is not between 1 and %d", ErrInvalidConfig, c.Samples, maxSamples))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: drain timeout %s is negative", ErrInvalidConfig, c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// OpenDataset returns the dataset of c as an fs.FS: the bundled one when
// c.Dataset is empty, otherwise the folder, which must exist.
func (c *Config) OpenDataset() (fs.FS, error) {
	if c.Dataset == "" {
		fsys, err := datasets.Bundled()
		if err != nil {
			return nil, fmt.Errorf("open bundled dataset: %w", err)
		}
		return fsys, nil
	}
	info, err := os.Stat(c.Dataset)
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", c.Dataset, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("open dataset %s: not a folder", c.Dataset)
	}
	return os.DirFS(c.Dataset), nil
}
