package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckpointRetention selects the checkpoints of a run that the Object Store
// keeps.
type CheckpointRetention struct {
	KeepLast  int // the newest KeepLast steps; at least 1
	KeepEvery int // also every step that is a multiple of KeepEvery; 0 keeps none extra
}

// Register declares the retention settings on f, with r's current values as
// defaults.
func (r *CheckpointRetention) Register(f *FlagSet) {
	f.Int(&r.KeepLast, "checkpoint-keep-last", "checkpoints", "number of newest checkpoints kept in the Object Store", AtLeast(1))
	f.Int(&r.KeepEvery, "checkpoint-keep-every", "steps", "also keep every checkpoint whose step is a multiple of this; 0 keeps no extra ones", AtLeast(0))
}

// keep reports whether step survives, given the run's steps sorted newest
// first.
func (r CheckpointRetention) keep(step uint64, rank int) bool {
	if rank < r.KeepLast {
		return true
	}
	return r.KeepEvery > 0 && step%uint64(r.KeepEvery) == 0
}

// PruneCheckpoints deletes the run's checkpoints that r does not keep and
// returns their names. Call it after each put. Objects of other runs, and
// objects of this run whose names are not <run>/step-<n>.safetensors, are
// left alone.
func PruneCheckpoints(ctx context.Context, obs jetstream.ObjectStore, run string, r CheckpointRetention) ([]string, error) {
	if err := ValidateRunID(run); err != nil {
		return nil, err
	}
	if r.KeepLast < 1 {
		return nil, fmt.Errorf("prune checkpoints of run %s: keep-last is %d, must be at least 1", run, r.KeepLast)
	}
	if r.KeepEvery < 0 {
		return nil, fmt.Errorf("prune checkpoints of run %s: keep-every is %d, must not be negative", run, r.KeepEvery)
	}

	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune checkpoints of run %s: list objects: %w", run, err)
	}

	type checkpoint struct {
		name string
		step uint64
	}
	var checkpoints []checkpoint
	for _, info := range infos {
		if info.Deleted || !strings.HasPrefix(info.Name, run+"/") {
			continue
		}
		objectRun, step, err := ParseCheckpointName(info.Name)
		if err != nil || objectRun != run {
			continue
		}
		checkpoints = append(checkpoints, checkpoint{name: info.Name, step: step})
	}
	slices.SortFunc(checkpoints, func(a, b checkpoint) int { return cmp.Compare(b.step, a.step) })

	var deleted []string
	for rank, c := range checkpoints {
		if r.keep(c.step, rank) {
			continue
		}
		if err := obs.Delete(ctx, c.name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return deleted, fmt.Errorf("prune checkpoints of run %s: delete %s: %w", run, c.name, err)
		}
		deleted = append(deleted, c.name)
	}
	return deleted, nil
}
