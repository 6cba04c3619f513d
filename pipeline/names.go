package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// Names shared by every run. Bucket names cannot contain dots.
const (
	// CheckpointBucket is the Object Store bucket of checkpoints, with objects
	// named <run>/step-<n>.safetensors.
	CheckpointBucket = "cyclegan_checkpoints"
	// RunsBucket is the KV bucket of run states, one key per run id.
	RunsBucket = "cyclegan_runs"
)

// Durable consumer names. Every process of a stage binds to the same one, so
// the stream hands each message to one of them.
const (
	ConsumerAugmenter = "augmenter" // on the raw stream
	ConsumerTrainer   = "trainer"   // on the train stream
	ConsumerEvaluator = "evaluator" // on the checkpoint stream
)

// maxRunIDLen is the longest run id, in characters.
const maxRunIDLen = 32

// ValidateRunID returns an error wrapping ErrInvalidRunID unless run matches
// [A-Za-z0-9_-]{1,32}. The run id becomes part of stream names and subjects,
// which must not contain dots, spaces or wildcards.
func ValidateRunID(run string) error {
	if run == "" || len(run) > maxRunIDLen {
		return fmt.Errorf("%w %q: must be 1 to %d characters from A-Z, a-z, 0-9, '_' and '-'", ErrInvalidRunID, run, maxRunIDLen)
	}
	for _, r := range run {
		ok := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w %q: character %q is not allowed, only A-Z, a-z, 0-9, '_' and '-'", ErrInvalidRunID, run, r)
		}
	}
	return nil
}

// Names are the stream names and subjects of one run.
type Names struct {
	Run string

	RawStream, RawSubject               string // loader → augmenters
	TrainStream, TrainSubject           string // augmenters → trainer
	CheckpointStream, CheckpointSubject string // trainer → evaluator (announcements)
	EvalStream, EvalSubject             string // evaluator → anyone (reports)
}

// NamesFor returns the names of run, or an error wrapping ErrInvalidRunID.
func NamesFor(run string) (Names, error) {
	if err := ValidateRunID(run); err != nil {
		return Names{}, err
	}
	return Names{
		Run:               run,
		RawStream:         "CYCLEGAN_RAW_" + run,
		RawSubject:        "cyclegan." + run + ".raw",
		TrainStream:       "CYCLEGAN_TRAIN_" + run,
		TrainSubject:      "cyclegan." + run + ".train",
		CheckpointStream:  "CYCLEGAN_CHECKPOINTS_" + run,
		CheckpointSubject: "cyclegan." + run + ".checkpoints",
		EvalStream:        "CYCLEGAN_EVAL_" + run,
		EvalSubject:       "cyclegan." + run + ".eval",
	}, nil
}

const (
	checkpointStepPrefix = "/step-"
	checkpointSuffix     = ".safetensors"
)

// CheckpointName returns the Object Store name of run's checkpoint at step.
func CheckpointName(run string, step uint64) string {
	return run + checkpointStepPrefix + strconv.FormatUint(step, 10) + checkpointSuffix
}

// ParseCheckpointName returns the run and step of a name made by
// CheckpointName, or an error wrapping ErrInvalidCheckpointName.
func ParseCheckpointName(name string) (run string, step uint64, err error) {
	run, rest, ok := strings.Cut(name, checkpointStepPrefix)
	if !ok || ValidateRunID(run) != nil {
		return "", 0, fmt.Errorf("%w %q: expected <run>/step-<n>.safetensors", ErrInvalidCheckpointName, name)
	}
	digits, ok := strings.CutSuffix(rest, checkpointSuffix)
	if !ok || digits == "" {
		return "", 0, fmt.Errorf("%w %q: expected <run>/step-<n>.safetensors", ErrInvalidCheckpointName, name)
	}
	step, err = strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w %q: step %q is not a whole number", ErrInvalidCheckpointName, name, digits)
	}
	return run, step, nil
}
