package loader

import (
	"errors"
	"fmt"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// Config holds the loader's settings.
type Config struct {
	// Dataset is the directory holding trainA and trainB. Empty means the bundled
	// dataset, unless Deps.Dataset supplies a file system.
	Dataset string
	// LoadSize is the side of the square images sent to the augmenters, in pixels.
	LoadSize int
	// MaxPixels bounds the declared width×height of an input image; larger files are
	// skipped.
	MaxPixels int
	// CacheBytes is the budget of the decoded-image cache in bytes; 0 turns it off.
	CacheBytes int64
	// Seed seeds the pair sampler: the same seed and dataset give the same pairs.
	Seed int
	// BatchSize is the trainer's number of pairs per step. The loader multiplies the
	// trainer's step by it to find the pair index to resume from.
	BatchSize int
	// MaxPairs is the number of pairs Run publishes before it returns; 0 means no bound.
	MaxPairs int
}

// DefaultConfig returns the defaults: the bundled dataset at the cpu preset's load size
// of 72 pixels.
func DefaultConfig() Config {
	return Config{
		LoadSize:   72,
		MaxPixels:  dataset.DefaultMaxPixels,
		CacheBytes: dataset.DefaultCacheBytes,
		BatchSize:  1,
	}
}

// Register declares the loader's settings on f, with c's current values as defaults.
func (c *Config) Register(f *pipeline.FlagSet) {
	f.String(&c.Dataset, "dataset", "dataset directory with the trainA and trainB folders (subfolders are read too); empty uses the bundled emoji dataset", nil)
	f.Int(&c.LoadSize, "load-size", "pixels", "side of the square images the loader resizes to and sends to the augmenters", validateLoadSize)
	f.Int(&c.MaxPixels, "max-pixels", "pixels", "largest declared width×height of an input image; larger files are skipped", pipeline.AtLeast(1))
	f.Bytes(&c.CacheBytes, "cache-bytes", "memory budget of the decoded-image cache; 0 turns the cache off", nil)
	f.Int(&c.Seed, "seed", "", "seed of the pair sampler; the same seed and dataset give the same sequence of pairs", pipeline.AtLeast(0))
	f.Int(&c.BatchSize, "batch-size", "pairs", "the trainer's batch size, which turns its step count into the pair index the loader resumes from", pipeline.AtLeast(1))
	f.Int(&c.MaxPairs, "max-pairs", "pairs", "pairs to publish before exiting; 0 publishes until the run ends", pipeline.AtLeast(0))
}

// Validate checks every setting and returns an error naming the flag of each invalid one.
func (c *Config) Validate() error {
	var errs []error
	if err := validateLoadSize(c.LoadSize); err != nil {
		errs = append(errs, fmt.Errorf("--load-size %d: %w", c.LoadSize, err))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, fmt.Errorf("--max-pixels %d: must be at least 1", c.MaxPixels))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("--cache-bytes %d: must not be negative", c.CacheBytes))
	}
	if c.Seed < 0 {
		errs = append(errs, fmt.Errorf("--seed %d: must not be negative", c.Seed))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("--batch-size %d: must be at least 1", c.BatchSize))
	}
	if c.MaxPairs < 0 {
		errs = append(errs, fmt.Errorf("--max-pairs %d: must not be negative", c.MaxPairs))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func validateLoadSize(size int) error {
	if size < 1 || size > messages.MaxImageSide {
		return fmt.Errorf("must be between 1 and %d pixels", messages.MaxImageSide)
	}
	return nil
}
