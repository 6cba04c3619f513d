package augmenter

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// testEnv is an embedded NATS server with one run's topology, and the registry and
// pipeline metrics that the stage under test reports to.
type testEnv struct {
	js              jetstream.JetStream
	topo            *pipeline.Topology
	reg             *prometheus.Registry
	pipelineMetrics *pipeline.Metrics
	log             *slog.Logger
	runStore        *pipeline.RunStore
}

// logWriter passes log records to t.Log until the test ends, because NATS callbacks may
// still log afterwards.
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func newTestLogger(t *testing.T) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newTestEnv starts an embedded server on 127.0.0.1 with a temporary store and ensures
// the topology of run "augtest" with topoCfg's bounds.
func newTestEnv(t *testing.T, topoCfg pipeline.TopologyConfig) *testEnv {
	t.Helper()
	log := newTestLogger(t)
	srv, err := pipeline.StartEmbedded(t.Context(), pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := pipeline.Connect(ctx, pipeline.ConnOptions{Name: t.Name(), URLs: []string{srv.ClientURL()}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if topoCfg.Run == "" {
		topoCfg.Run = "augtest"
	}
	topo, err := pipeline.EnsureTopology(ctx, js, topoCfg, log)
	if err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	reg := prometheus.NewRegistry()
	pipelineMetrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	store, err := pipeline.NewRunStore(topo.Runs, topo.Run, nil, log)
	if err != nil {
		t.Fatalf("NewRunStore: %v", err)
	}
	return &testEnv{js: js, topo: topo, reg: reg, pipelineMetrics: pipelineMetrics, log: log, runStore: store}
}

func (e *testEnv) deps() Deps {
	return Deps{Topology: e.topo, Registerer: e.reg, Metrics: e.pipelineMetrics, Logger: e.log, DrainTimeout: 5 * time.Second}
}

// setRunState writes state as the run's state, replacing what is stored.
func (e *testEnv) setRunState(t *testing.T, state pipeline.RunState) {
	t.Helper()
	_, err := e.runStore.Modify(t.Context(), func(s *pipeline.RunState, _ bool) error {
		*s = state
		return nil
	})
	if err != nil {
		t.Fatalf("write run state: %v", err)
	}
}

// runningStage is a Stage whose Run goes on in a goroutine.
type runningStage struct {
	done chan struct{} // closed when Run returned
	err  error         // Run's result, set before done is closed
}

// startStage runs st.Run in a goroutine, whose context ends when the test ends.
func startStage(t *testing.T, st *Stage) *runningStage {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &runningStage{done: make(chan struct{})}
	go func() {
		r.err = st.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Errorf("augmenter did not return within 15s after its context ended")
		}
	})
	return r
}

// returned reports whether Run has returned.
func (r *runningStage) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// wait returns Run's result, failing the test after timeout.
func (r *runningStage) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("augmenter did not return within %s", timeout)
		return nil
	}
}

// storedMessage is one message of a stream, read without consuming it.
type storedMessage struct {
	id   string
	pair *messages.Pair
}

// streamPairs returns every message stored in stream, oldest first, decoded as pairs.
func streamPairs(t *testing.T, js jetstream.JetStream, stream string) []storedMessage {
	t.Helper()
	ctx := t.Context()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("look up stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []storedMessage
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d of %s: %v", seq, stream, err)
		}
		pair, err := messages.DecodePair(msg.Data)
		if err != nil {
			t.Fatalf("decode message %d of %s: %v", seq, stream, err)
		}
		out = append(out, storedMessage{id: msg.Header.Get(jetstream.MsgIDHeader), pair: pair})
	}
	return out
}

// metricValue returns the value of the counter or gauge name whose labels include
// labels, and 0 with false when no such series exists.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	matched := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			matched++
		}
	}
	return matched == len(want)
}

// waitFor polls cond every 20ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
