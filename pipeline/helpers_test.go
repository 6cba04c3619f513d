package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logBuffer collects log records for assertions and drops writes after the
// test ended, because NATS callbacks may still log then.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestLogger returns a debug logger whose records are printed when the
// test fails, and the buffer holding them.
func newTestLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log records:\n%s", b.String())
		}
		b.mu.Lock()
		b.done = true
		b.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// startEmbedded starts an embedded server on a fresh store, stopped when the
// test ends.
func startEmbedded(t *testing.T, o EmbeddedOptions) *EmbeddedServer {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	srv, err := StartEmbedded(t.Context(), o)
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
	return srv
}

// connectJS connects to url with short reconnect waits, closed when the
// test ends.
func connectJS(t *testing.T, url string, log *slog.Logger) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, ConnOptions{
		Name:             t.Name(),
		URLs:             []string{url},
		ReconnectWait:    50 * time.Millisecond,
		MaxReconnectWait: 250 * time.Millisecond,
		Logger:           log,
	})
	if err != nil {
		t.Fatalf("Connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

// counterValue returns the value of the series of c with labels.
func counterValue(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// waitFor polls cond every 20ms until it holds or timeout passes.
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

// runConsumer runs c.Run in a goroutine and returns a function that stops it
// and returns Run's error.
func runConsumer(t *testing.T, c *Consumer, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("Consumer.Run did not return within 15s after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// receivedSet records handled message ids and counts repeats.
type receivedSet struct {
	mu      sync.Mutex
	counts  map[string]int
	repeats int
}

func newReceivedSet() *receivedSet { return &receivedSet{counts: map[string]int{}} }

func (r *receivedSet) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[id]++
	if r.counts[id] > 1 {
		r.repeats++
	}
}

func (r *receivedSet) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}

// diff returns the ids of want not received, and the ids received but not
// in want.
func (r *receivedSet) diff(want []string) (missing, extra []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		if r.counts[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id := range r.counts {
		if !wanted[id] {
			extra = append(extra, id)
		}
	}
	return missing, extra
}

func containsAll(s string, parts ...string) []string {
	var absent []string
	for _, p := range parts {
		if !strings.Contains(s, p) {
			absent = append(absent, p)
		}
	}
	return absent
}
