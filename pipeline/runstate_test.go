package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func newRunStores(t *testing.T, run string) (*RunStore, *RunStore, jetstream.ObjectStore) {
	t.Helper()
	log, _ := newTestLogger(t)
	srv := startEmbedded(t, EmbeddedOptions{})
	_, js := connectJS(t, srv.ClientURL(), log)
	topo, err := EnsureTopology(t.Context(), js, TopologyConfig{Run: run}, log)
	if err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	a, err := NewRunStore(topo.Runs, run, clock, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRunStore(topo.Runs, run, clock, log)
	if err != nil {
		t.Fatal(err)
	}
	return a, b, topo.Checkpoints
}

func TestRunStoreCompareAndSet(t *testing.T) {
	trainer, other, _ := newRunStores(t, "cas")
	ctx := t.Context()

	if _, _, err := trainer.Get(ctx); !errors.Is(err, ErrRunStateNotFound) {
		t.Fatalf("Get before any write = %v, want ErrRunStateNotFound", err)
	}
	rev1, err := trainer.Update(ctx, RunState{Status: StatusRunning}, 0)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := other.Update(ctx, RunState{Status: StatusRunning}, 0); !errors.Is(err, ErrRevisionConflict) {
		t.Errorf("second create = %v, want ErrRevisionConflict", err)
	}

	state, rev, err := other.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev != rev1 || state.Status != StatusRunning || state.Run != "cas" {
		t.Errorf("Get = %+v at %d, want running at %d", state, rev, rev1)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !state.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt = %s, want the injected clock's %s", state.UpdatedAt, want)
	}

	rev2, err := trainer.Update(ctx, RunState{Status: StatusRunning, Step: 100, Epoch: 1, Checkpoint: CheckpointName("cas", 100)}, rev1)
	if err != nil {
		t.Fatalf("update at the current revision: %v", err)
	}
	// other still holds rev1: its write must be refused.
	_, err = other.Update(ctx, RunState{Status: StatusFailed}, rev1)
	if !errors.Is(err, ErrRevisionConflict) {
		t.Fatalf("stale update = %v, want ErrRevisionConflict", err)
	}
	state, rev, err = other.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev != rev2 || state.Step != 100 || state.Status != StatusRunning || state.Checkpoint != "cas/step-100.safetensors" {
		t.Errorf("after the refused write: %+v at %d, want step 100 running at %d", state, rev, rev2)
	}

	// Modify re-reads after a conflict and applies its change to the latest state.
	final, err := other.Modify(ctx, func(s *RunState, found bool) error {
		if !found {
			return errors.New("state not found")
		}
		s.Status = StatusFinished
		return nil
	})
	if err != nil {
		t.Fatalf("Modify: %v", err)
	}
	if final.Status != StatusFinished || final.Step != 100 {
		t.Errorf("Modify wrote %+v, want finished at step 100", final)
	}
}

func TestRunStoreWatch(t *testing.T) {
	trainer, evaluator, _ := newRunStores(t, "watch")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	rev, err := trainer.Update(ctx, RunState{Status: StatusRunning, Step: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	updates, err := evaluator.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	final := make(chan RunState, 1)
	go func() {
		s, err := evaluator.WaitFinal(ctx)
		if err != nil {
			t.Errorf("WaitFinal: %v", err)
		}
		final <- s
	}()

	next := func() RunState {
		t.Helper()
		select {
		case s, ok := <-updates:
			if !ok {
				t.Fatal("watch channel closed early")
			}
			return s
		case <-ctx.Done():
			t.Fatal("no update within 10s")
		}
		return RunState{}
	}
	if s := next(); s.Status != StatusRunning || s.Step != 1 {
		t.Errorf("first watched state = %+v, want the stored running state at step 1", s)
	}
	rev, err = trainer.Update(ctx, RunState{Status: StatusRunning, Step: 2}, rev)
	if err != nil {
		t.Fatal(err)
	}
	if s := next(); s.Step != 2 {
		t.Errorf("second watched state = %+v, want step 2", s)
	}
	if _, err := trainer.Update(ctx, RunState{Status: StatusFinished, Step: 3}, rev); err != nil {
		t.Fatal(err)
	}
	if s := next(); s.Status != StatusFinished {
		t.Errorf("third watched state = %+v, want finished", s)
	}
	select {
	case s := <-final:
		if s.Status != StatusFinished || s.Step != 3 {
			t.Errorf("WaitFinal = %+v, want finished at step 3", s)
		}
	case <-ctx.Done():
		t.Fatal("WaitFinal did not return")
	}

	cancel()
	select {
	case _, ok := <-updates:
		for ok {
			_, ok = <-updates
		}
	case <-time.After(5 * time.Second):
		t.Error("watch channel not closed after its context ended")
	}
}

func TestPruneCheckpoints(t *testing.T) {
	_, _, obs := newRunStores(t, "prune")
	ctx := t.Context()
	retention := CheckpointRetention{KeepLast: 3, KeepEvery: 4}
	var lastDeleted []string
	for step := uint64(1); step <= 10; step++ {
		if _, err := obs.PutBytes(ctx, CheckpointName("prune", step), []byte(fmt.Sprint(step))); err != nil {
			t.Fatal(err)
		}
		deleted, err := PruneCheckpoints(ctx, obs, "prune", retention)
		if err != nil {
			t.Fatalf("PruneCheckpoints after step %d: %v", step, err)
		}
		lastDeleted = deleted
	}
	// Objects of another run and a non-checkpoint object of this run stay.
	for _, name := range []string{CheckpointName("other", 1), "prune/notes.txt"} {
		if _, err := obs.PutBytes(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := PruneCheckpoints(ctx, obs, "prune", retention); err != nil {
		t.Fatal(err)
	}

	infos, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, info := range infos {
		names = append(names, info.Name)
	}
	slices.Sort(names)
	want := []string{"other/step-1.safetensors", "prune/notes.txt", "prune/step-10.safetensors", "prune/step-4.safetensors", "prune/step-8.safetensors", "prune/step-9.safetensors"}
	if !slices.Equal(names, want) {
		t.Errorf("objects = %q, want %q", names, want)
	}
	if !slices.Equal(lastDeleted, []string{"prune/step-7.safetensors"}) {
		t.Errorf("deleted after step 10 = %q, want step 7 only", lastDeleted)
	}

	if _, err := PruneCheckpoints(ctx, obs, "prune", CheckpointRetention{KeepLast: 0}); err == nil {
		t.Error("PruneCheckpoints with keep-last 0 succeeded")
	}
}
