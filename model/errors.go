package model

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidConfig is returned when a Config fails validation.
	ErrInvalidConfig = errors.New("invalid model config")
	// ErrInvalidBatch is returned by CycleGAN.Step for a batch of the wrong
	// length or with non-finite pixels.
	ErrInvalidBatch = errors.New("invalid training batch")
	// ErrInvalidImage is returned by Translator for an image of the wrong
	// length or size.
	ErrInvalidImage = errors.New("invalid image")
	// ErrInvalidCheckpoint is returned when checkpoint bytes cannot be
	// decoded or do not match the config they carry.
	ErrInvalidCheckpoint = errors.New("invalid checkpoint")
	// ErrNonFiniteState is returned by CycleGAN.Checkpoint when a weight,
	// moment or pooled image is NaN or infinite, so nothing is written.
	ErrNonFiniteState = errors.New("non-finite training state")
	// ErrTooManyNonFinite is returned by CycleGAN.Step when
	// MaxNonFiniteSteps steps in a row had a non-finite loss. The error
	// also wraps the NonFiniteError of the last step.
	ErrTooManyNonFinite = errors.New("too many non-finite steps in a row")
)

// MaxNonFiniteSteps is the number of consecutive non-finite steps after
// which CycleGAN.Step returns ErrTooManyNonFinite.
const MaxNonFiniteSteps = 10

// NonFiniteError reports a training step whose loss or gradient was NaN or
// infinite. The step's update was skipped: weights, Adam moments, step
// counts and image pools are as they were before the step.
type NonFiniteError struct {
	Step  int64   // index of the skipped step, counting applied updates from 0
	Name  string  // loss name (D_A, G_A, …) or "grad." followed by a weight name
	Value float64 // the offending value
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("non-finite %s = %v at step %d: update skipped", e.Name, e.Value, e.Step)
}
