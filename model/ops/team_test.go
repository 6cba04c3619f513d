package ops

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// withProcs runs the test with at least two processors, so that a team has a helper.
func withProcs(t *testing.T) {
	t.Helper()
	if runtime.GOMAXPROCS(0) < 2 {
		previous := runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(previous) })
	}
}

func TestTeamRunsEveryPartOnce(t *testing.T) {
	withProcs(t)
	team := newTeam()
	for parts := 1; parts <= 5; parts++ {
		for round := range 200 {
			counts := make([]atomic.Int32, parts)
			team.run(parts, func(part int) { counts[part].Add(1) })
			for part := range counts {
				if n := counts[part].Load(); n != 1 {
					t.Fatalf("%d parts, round %d: part %d ran %d times", parts, round, part, n)
				}
			}
		}
	}
}

// A loop started inside a part runs on new goroutines instead of waiting for the busy team.
func TestTeamNestedRun(t *testing.T) {
	withProcs(t)
	team := newTeam()
	var inner atomic.Int32
	team.run(2, func(int) {
		team.run(3, func(int) { inner.Add(1) })
	})
	if n := inner.Load(); n != 6 {
		t.Errorf("inner parts ran %d times, want 6", n)
	}
}

func TestTeamWorkersReturnFirstError(t *testing.T) {
	withProcs(t)
	team := newTeam()
	workers := make([]worker, 2)
	err := team.runWorkers(workers, func(i int, _ *worker) error {
		if i == 1 {
			return ErrInvalidArgument
		}
		return nil
	})
	if err != ErrInvalidArgument {
		t.Errorf("runWorkers error = %v, want ErrInvalidArgument", err)
	}
}

// The helpers exit once nothing holds the team's handle.
func TestTeamHelpersExit(t *testing.T) {
	withProcs(t)
	// Let the helpers of teams that earlier tests dropped exit first.
	for range 5 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	before := runtime.NumGoroutine()
	team := newTeam()
	if team == nil {
		t.Skip("this build runs parallel loops on new goroutines, without helpers")
	}
	team.run(2, func(int) {})
	if runtime.NumGoroutine() <= before {
		t.Fatal("the team started no helper")
	}
	team = nil
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 10 s after the team became garbage, want %d", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
