package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDrainContextOutlivesParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	drain, cancel := DrainContext(parent, 200*time.Millisecond)
	defer cancel()

	cancelParent()
	time.Sleep(50 * time.Millisecond)
	if err := drain.Err(); err != nil {
		t.Fatalf("drain context ended %v right after its parent; want it to last the drain timeout", err)
	}
	select {
	case <-drain.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("drain context still alive 5s after a 200ms drain timeout")
	}
}

func TestDrainContextCancel(t *testing.T) {
	drain, cancel := DrainContext(context.Background(), time.Hour)
	cancel()
	if drain.Err() == nil {
		t.Error("drain context alive after its cancel")
	}
}

func TestGroupFirstErrorCancelsOthers(t *testing.T) {
	g, ctx := NewGroup(context.Background())
	boom := errors.New("boom")
	g.Go("loader", func(ctx context.Context) error { return boom })
	g.Go("trainer", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err() // ends because of loader: not reported
	})
	err := g.Wait()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "loader") {
		t.Errorf("Wait = %v, want boom named after loader", err)
	}
	if strings.Contains(err.Error(), "trainer") {
		t.Errorf("Wait = %v, reports the stage that only stopped", err)
	}
	if ctx.Err() == nil {
		t.Error("group context alive after a failure")
	}
}

func TestGroupCleanStop(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	g, _ := NewGroup(parent)
	for _, name := range []string{"a", "b"} {
		g.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
	}
	cancel()
	if err := g.Wait(); err != nil {
		t.Errorf("Wait after the parent ended = %v, want nil", err)
	}
}

func TestBackoffCapped(t *testing.T) {
	b := newBackoff(10*time.Millisecond, 40*time.Millisecond)
	for range 5 {
		if !b.sleep(context.Background()) {
			t.Fatal("sleep returned false without a canceled context")
		}
	}
	if b.current != 40*time.Millisecond {
		t.Errorf("delay = %s after 5 doublings, want the 40ms cap", b.current)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.sleep(ctx) {
		t.Error("sleep returned true with a canceled context")
	}
}

func TestReconnectDelayBounds(t *testing.T) {
	delay := reconnectDelay(100*time.Millisecond, time.Second)
	for attempts := 1; attempts <= 20; attempts++ {
		d := delay(attempts)
		if d < 0 || d > time.Second {
			t.Errorf("delay(%d) = %s, want within [0, 1s]", attempts, d)
		}
	}
	if d := delay(20); d < 500*time.Millisecond {
		t.Errorf("delay(20) = %s, want at least half the 1s cap", d)
	}
}

func TestEmbeddedRestartKeepsStreams(t *testing.T) {
	log, _ := newTestLogger(t)
	dir := t.TempDir()
	port := freePort(t)
	first, err := StartEmbedded(t.Context(), EmbeddedOptions{StoreDir: dir, Port: port, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("nats://127.0.0.1:%d", port); first.ClientURL() != want {
		t.Errorf("ClientURL = %s, want %s", first.ClientURL(), want)
	}
	nc, js := connectJS(t, first.ClientURL(), log)
	topo, err := EnsureTopology(t.Context(), js, TopologyConfig{Run: "keep"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), topo.EvalSubject, []byte("report")); err != nil {
		t.Fatal(err)
	}
	if err := CloseConn(nc, 5*time.Second); err != nil {
		t.Errorf("CloseConn: %v", err)
	}
	if !nc.IsClosed() {
		t.Error("connection open after CloseConn")
	}
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startEmbedded(t, EmbeddedOptions{StoreDir: dir, Port: port})
	_, js = connectJS(t, second.ClientURL(), log)
	s, err := js.Stream(t.Context(), topo.EvalStream)
	if err != nil {
		t.Fatalf("eval stream after restart: %v", err)
	}
	if msgs := s.CachedInfo().State.Msgs; msgs != 1 {
		t.Errorf("eval stream holds %d messages after restart, want 1", msgs)
	}
}

func TestStartEmbeddedRequiresStoreDir(t *testing.T) {
	if _, err := StartEmbedded(t.Context(), EmbeddedOptions{}); err == nil {
		t.Error("StartEmbedded without a store directory succeeded")
	}
}
