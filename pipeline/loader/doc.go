// Package loader is the loader stage: it reads the train folders of a dataset (through
// package dataset), draws unaligned (A, B) pairs with a seeded sampler and publishes them,
// resized to the load size, as raw pair messages.
package loader

import "errors"

// ErrInvalidSampler is returned for sampler arguments out of range.
var ErrInvalidSampler = errors.New("invalid sampler arguments")
