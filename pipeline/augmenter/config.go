package augmenter

import (
	"errors"
	"fmt"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// ErrInvalidConfig is returned by Config.Validate and New for a setting or dependency
// that breaks its rule.
var ErrInvalidConfig = errors.New("invalid augmenter configuration")

// Config holds the augmenter's settings.
type Config struct {
	CropSize int  // side of the square train images, in pixels
	NoFlip   bool // turns the random left-right mirroring off
	// Seed seeds the crops and flips together with each pair's sequence number.
	Seed int
	// Concurrency is the number of pairs one process augments at once.
	Concurrency int
}

// DefaultConfig returns the defaults: the cpu preset's crop of 64 pixels, flips on.
func DefaultConfig() Config {
	return Config{CropSize: 64, Concurrency: 1}
}

// Register declares the augmenter's settings on f, with c's current values as defaults.
func (c *Config) Register(f *pipeline.FlagSet) {
	f.Int(&c.CropSize, "crop-size", "pixels", "side of the square crop taken at a random offset of each raw image; at most the loader's load size", validateCropSize)
	f.Bool(&c.NoFlip, "no-flip", "turn off the random left-right mirroring of each image")
	f.Int(&c.Seed, "seed", "", "seed of the crops and flips, which are drawn from it and each pair's sequence number", pipeline.AtLeast(0))
	f.Int(&c.Concurrency, "concurrency", "pairs", "raw pairs this process augments at once", pipeline.AtLeast(1))
}

// Validate checks every setting and returns an error naming the flag of each invalid one.
func (c *Config) Validate() error {
	var errs []error
	if err := validateCropSize(c.CropSize); err != nil {
		errs = append(errs, fmt.Errorf("--crop-size %d: %w", c.CropSize, err))
	}
	if c.Seed < 0 {
		errs = append(errs, fmt.Errorf("--seed %d: must not be negative", c.Seed))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency %d: must be at least 1", c.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func validateCropSize(size int) error {
	if size < 1 || size > messages.MaxImageSide {
		return fmt.Errorf("must be between 1 and %d pixels", messages.MaxImageSide)
	}
	return nil
}
