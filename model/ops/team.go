package ops

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gocyclegan/cyclegan/model/gemm"
)

// team runs the parts of the parallel loops of one graph's ops on helper goroutines that stay
// on their cores between ops. A goroutine started per loop, as parallelFor and runWorkers do
// without a team, first has to wait for the scheduler to wake an idle thread. In a runtime
// trace of BenchmarkTrainStep on a 2-core VM that wait took a median 42 µs, about as long as
// the median part ran. A helper instead checks for work in a loop for spinChecks rounds after
// each part before it blocks, and the caller waits for the helpers the same way. Like
// OpenMP's spinning threads, this costs CPU time that other processes on a busy machine
// could have used.
//
// The helpers exit once the teamHandle that the graph's ops hold is garbage, so a team needs
// no Close. A team runs one loop at a time; a loop started while another runs (a nested or
// concurrent call) falls back to new goroutines.
type team struct {
	helpers []*helper
	busy    atomic.Bool
	pending atomic.Int32  // parts of the current loop still running on helpers
	waiting atomic.Bool   // the caller blocks on done rather than spinning
	done    chan uint64   // the generation of a finished loop, for a blocked caller
	gen     atomic.Uint64 // loops run so far
	stop    chan struct{}
}

// teamHandle is the reference to a team that ops hold. The helpers reference only the team,
// so the handle becomes garbage with the graph and its cleanup stops them.
type teamHandle struct {
	*team
}

// spinChecks is how many times a helper checks for a new part, and the caller for finished
// parts, before blocking. That takes about 250 µs on a 2-core Xeon, longer than the serial
// work between most ops of a training step. It is short enough to cost little where a
// step's serial work (Adam, the image pools) keeps the helpers idle. In BenchmarkTrainStep a spin of about 8 µs
// left the step as slow as new goroutines did; 250 µs made it about 20% faster at 64 px.
const spinChecks = 1 << 20

// helper is one helper goroutine's mailbox. The caller writes fn, part and gen, then sets
// ready; the helper clears ready once the part has run.
type helper struct {
	fn     func(part int)
	part   int
	gen    uint64 // the loop the part belongs to
	ready  atomic.Bool
	asleep atomic.Bool
	wake   chan struct{}
}

// newTeam starts GOMAXPROCS − 1 helpers, or returns nil with a single processor and in the
// OpenBLAS build.
//
// NOTE: with OpenBLAS, whose GEMMs are cgo calls, helpers made BenchmarkTrainStep slower (277
// against 245 ms at 64 px, 936 against 760 ms at 128 px) and cost about a quarter more CPU
// time. Why is not established; a cgo call hands its processor back to the scheduler, which
// may not suit spinning waits.
func newTeam() *teamHandle {
	n := runtime.GOMAXPROCS(0) - 1
	if n < 1 || gemm.Build == "openblas" {
		return nil
	}
	t := &team{done: make(chan uint64, 2), stop: make(chan struct{})}
	for range n {
		h := &helper{wake: make(chan struct{}, 1)}
		t.helpers = append(t.helpers, h)
		go t.serve(h)
	}
	handle := &teamHandle{t}
	runtime.AddCleanup(handle, func(t *team) { close(t.stop) }, t)
	return handle
}

// serve runs the parts given to h until the team stops.
func (t *team) serve(h *helper) {
	for {
		for spins := 0; !h.ready.Load(); spins++ {
			if spins < spinChecks {
				continue
			}
			h.asleep.Store(true)
			if h.ready.Load() { // given work between the last check and asleep
				h.asleep.Store(false)
				break
			}
			select {
			case <-h.wake:
			case <-t.stop:
				return
			}
			h.asleep.Store(false)
			spins = 0
		}
		fn, part, gen := h.fn, h.part, h.gen
		fn(part)
		h.fn = nil
		h.ready.Store(false) // from here on the caller may give h the next part
		if t.pending.Add(-1) == 0 && t.waiting.Load() {
			select {
			case t.done <- gen:
			case <-t.stop:
				return
			}
		}
	}
}

// run calls fn(part) for every part in [0, parts): part 0 and those beyond the helpers on the
// calling goroutine, the others on the helpers. It returns when all have returned.
func (t *teamHandle) run(parts int, fn func(part int)) {
	if t == nil || parts <= 1 || !t.busy.CompareAndSwap(false, true) {
		spawnParts(parts, fn)
		return
	}
	defer t.busy.Store(false)
	gen := t.gen.Add(1)
	given := min(parts-1, len(t.helpers))
	t.pending.Store(int32(given))
	for i, h := range t.helpers[:given] {
		h.fn, h.part, h.gen = fn, i+1, gen
		h.ready.Store(true)
		if h.asleep.Load() {
			select {
			case h.wake <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
	fn(0)
	for part := given + 1; part < parts; part++ {
		fn(part)
	}
	t.wait(gen)
}

// wait returns once the helpers have finished the loop of generation gen.
func (t *team) wait(gen uint64) {
	for spins := 0; spins < spinChecks; spins++ {
		if t.pending.Load() == 0 {
			return
		}
	}
	t.waiting.Store(true)
	defer t.waiting.Store(false)
	if t.pending.Load() == 0 { // finished between the last check and waiting
		return
	}
	// The last helper to finish sends gen if waiting is set by then. A loop that returned on the
	// check above may have left its own generation in the channel: skip it.
	for <-t.done != gen {
	}
}

// spawnParts runs parts 1 to parts−1 on new goroutines and part 0 on the caller.
func spawnParts(parts int, fn func(part int)) {
	var wg sync.WaitGroup
	for part := 1; part < parts; part++ {
		wg.Go(func() { fn(part) })
	}
	if parts > 0 {
		fn(0)
	}
	wg.Wait()
}

// parallelFor calls fn on disjoint chunks [lo, hi) that cover [0, n), on up to GOMAXPROCS
// goroutines, the team's helpers if there is a team. work is an estimate of the total cost in
// element operations: below minParallelWork the call runs on the calling goroutine, because
// handing work to another goroutine costs a few microseconds.
func (t *teamHandle) parallelFor(n, work int, fn func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n)
	if parts <= 1 || work < minParallelWork {
		fn(0, n)
		return
	}
	t.run(parts, func(part int) { fn(n*part/parts, n*(part+1)/parts) })
}

// runWorkers calls fn(i) for every worker i concurrently and returns the first error.
func (t *teamHandle) runWorkers(workers []worker, fn func(i int, w *worker) error) error {
	if len(workers) == 1 {
		return fn(0, &workers[0])
	}
	errs := make([]error, len(workers))
	t.run(len(workers), func(i int) { errs[i] = fn(i, &workers[i]) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
