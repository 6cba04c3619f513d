package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RunStatus is the life-cycle state of a run.
type RunStatus string

// Run statuses. The trainer writes them; every stage watches for the two
// final ones.
const (
	StatusRunning  RunStatus = "running"
	StatusFinished RunStatus = "finished"
	StatusFailed   RunStatus = "failed"
)

// Final reports whether no stage will work on the run any more.
func (s RunStatus) Final() bool { return s == StatusFinished || s == StatusFailed }

// RunState is the JSON value stored under the run id in RunsBucket.
type RunState struct {
	Run        string    `json:"run"`
	Status     RunStatus `json:"status"`
	Checkpoint string    `json:"checkpoint,omitempty"` // object name of the latest checkpoint
	Step       uint64    `json:"step"`
	Epoch      uint64    `json:"epoch"`
	Error      string    `json:"error,omitempty"` // why the run failed
	UpdatedAt  time.Time `json:"updated_at"`
}

// RunStore reads, writes and watches one run's state. Writes are
// compare-and-set on the entry's revision, so that two writers cannot
// overwrite each other unnoticed.
type RunStore struct {
	kv  jetstream.KeyValue
	run string
	now func() time.Time
	log *slog.Logger
}

// NewRunStore returns the store of run's state in kv (the RunsBucket
// bucket). now stamps UpdatedAt; nil means time.Now.
func NewRunStore(kv jetstream.KeyValue, run string, now func() time.Time, log *slog.Logger) (*RunStore, error) {
	if err := ValidateRunID(run); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = discardLogger()
	}
	return &RunStore{kv: kv, run: run, now: now, log: log.With("run", run)}, nil
}

// Get returns the state and its revision, or an error wrapping
// ErrRunStateNotFound before the first write.
func (s *RunStore) Get(ctx context.Context) (RunState, uint64, error) {
	entry, err := s.kv.Get(ctx, s.run)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return RunState{}, 0, fmt.Errorf("get state of run %s: %w", s.run, ErrRunStateNotFound)
	}
	if err != nil {
		return RunState{}, 0, fmt.Errorf("get state of run %s: %w", s.run, err)
	}
	state, err := decodeRunState(entry)
	if err != nil {
		return RunState{}, 0, err
	}
	return state, entry.Revision(), nil
}

// Update writes state if the stored revision is still revision; revision 0
// means the state must not exist yet. It sets Run and UpdatedAt, and
// returns the new revision, or an error wrapping ErrRevisionConflict when
// another write came first (read again with Get and retry).
func (s *RunStore) Update(ctx context.Context, state RunState, revision uint64) (uint64, error) {
	state.Run = s.run
	state.UpdatedAt = s.now().UTC()
	data, err := json.Marshal(state)
	if err != nil {
		return 0, fmt.Errorf("encode state of run %s: %w", s.run, err)
	}

	var newRevision uint64
	if revision == 0 {
		newRevision, err = s.kv.Create(ctx, s.run, data)
	} else {
		newRevision, err = s.kv.Update(ctx, s.run, data, revision)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("update state of run %s at revision %d: %w", s.run, revision, ErrRevisionConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("update state of run %s at revision %d: %w", s.run, revision, err)
	}
	return newRevision, nil
}

// Modify reads the state, applies change and writes it back, reading and
// applying again after a revision conflict. change receives the zero
// RunState (with found false) when none is stored yet. It returns the
// state written.
func (s *RunStore) Modify(ctx context.Context, change func(state *RunState, found bool) error) (RunState, error) {
	for {
		state, revision, err := s.Get(ctx)
		found := err == nil
		if err != nil && !errors.Is(err, ErrRunStateNotFound) {
			return RunState{}, err
		}
		if err := change(&state, found); err != nil {
			return RunState{}, err
		}
		_, err = s.Update(ctx, state, revision)
		if err == nil {
			return state, nil
		}
		if !errors.Is(err, ErrRevisionConflict) {
			return RunState{}, err
		}
		s.log.Debug("run state changed while modifying it, retrying", "revision", revision)
	}
}

// Watch returns a channel that receives the current state, if any, and
// then every later one. The channel is closed when ctx ends or the watch
// fails; entries that do not decode are logged and skipped.
func (s *RunStore) Watch(ctx context.Context) (<-chan RunState, error) {
	watcher, err := s.kv.Watch(ctx, s.run)
	if err != nil {
		return nil, fmt.Errorf("watch state of run %s: %w", s.run, err)
	}
	out := make(chan RunState)
	go func() {
		defer close(out)
		defer func() { _ = watcher.Stop() }()
		for {
			var entry jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case entry, ok = <-watcher.Updates():
			}
			if !ok {
				return
			}
			// A nil entry marks the end of the stored values; deletes and
			// purges carry no state.
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			state, err := decodeRunState(entry)
			if err != nil {
				s.log.Warn("skipping run state that does not decode", "revision", entry.Revision(), "err", err)
				continue
			}
			select {
			case out <- state:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// WaitFinal returns the first state with a final status (finished or
// failed), watching until one is written or ctx ends.
func (s *RunStore) WaitFinal(ctx context.Context) (RunState, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := s.Watch(ctx)
	if err != nil {
		return RunState{}, err
	}
	for state := range updates {
		if state.Status.Final() {
			return state, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return RunState{}, fmt.Errorf("wait for run %s to end: %w", s.run, err)
	}
	return RunState{}, fmt.Errorf("wait for run %s to end: watch stopped", s.run)
}

func decodeRunState(entry jetstream.KeyValueEntry) (RunState, error) {
	var state RunState
	if err := json.Unmarshal(entry.Value(), &state); err != nil {
		return RunState{}, fmt.Errorf("decode state of run %s at revision %d: %w", entry.Key(), entry.Revision(), err)
	}
	return state, nil
}
