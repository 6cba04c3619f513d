package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pubsubEnv is one embedded server with the topology of run "t" and
// registered metrics.
type pubsubEnv struct {
	srv     *EmbeddedServer
	js      jetstream.JetStream
	topo    *Topology
	metrics *Metrics
	log     *logBuffer
}

func newPubsubEnv(t *testing.T, cfg TopologyConfig, server EmbeddedOptions) *pubsubEnv {
	t.Helper()
	log, buf := newTestLogger(t)
	srv := startEmbedded(t, server)
	_, js := connectJS(t, srv.ClientURL(), log)
	if cfg.Run == "" {
		cfg.Run = "t"
	}
	topo, err := EnsureTopology(t.Context(), js, cfg, log)
	if err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	return &pubsubEnv{srv: srv, js: js, topo: topo, metrics: metrics, log: buf}
}

func (e *pubsubEnv) publisher(t *testing.T, stage string) *Publisher {
	t.Helper()
	log, _ := newTestLogger(t)
	p, err := NewPublisher(t.Context(), e.js, PublisherOptions{
		Stream: e.topo.RawStream, Subject: e.topo.RawSubject, Run: e.topo.Run, Stage: stage,
		Metrics: e.metrics, Logger: log,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AttemptTimeout: time.Second,
	})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p
}

func (e *pubsubEnv) consumer(t *testing.T, js jetstream.JetStream, opts ConsumerOptions) *Consumer {
	t.Helper()
	log, _ := newTestLogger(t)
	opts.Stream, opts.Durable, opts.Run = e.topo.RawStream, ConsumerAugmenter, e.topo.Run
	if opts.Stage == "" {
		opts.Stage = "augmenter"
	}
	if opts.Metrics == nil {
		opts.Metrics = e.metrics
	}
	if opts.Logger == nil {
		opts.Logger = log
	}
	if opts.PullWait == 0 {
		opts.PullWait = 500 * time.Millisecond
	}
	if js == nil {
		js = e.js
	}
	c, err := NewConsumer(t.Context(), js, opts)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	return c
}

func TestPublishConsumeRoundTrip(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	const n = 20
	var want []string
	for i := range n {
		id := fmt.Sprintf("pair-%03d", i)
		want = append(want, id)
		ack, err := pub.Publish(t.Context(), id, []byte("data of "+id))
		if err != nil {
			t.Fatalf("Publish %s: %v", id, err)
		}
		if ack.Stream != env.topo.RawStream || ack.Duplicate {
			t.Errorf("ack of %s = %+v, want stream %s, not duplicate", id, ack, env.topo.RawStream)
		}
	}
	// The same id again is recognized by the stream and not stored twice.
	ack, err := pub.Publish(t.Context(), "pair-000", []byte("data of pair-000"))
	if err != nil {
		t.Fatalf("repeated Publish: %v", err)
	}
	if !ack.Duplicate {
		t.Errorf("repeated publish ack = %+v, want Duplicate", ack)
	}

	got := newReceivedSet()
	var mu sync.Mutex
	var order []string
	var badData atomic.Int32
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		if string(m.Data) != "data of "+m.ID {
			badData.Add(1)
		}
		if m.NumDelivered != 1 || m.StreamSequence == 0 || m.Subject != env.topo.RawSubject {
			t.Errorf("message %s: deliveries %d, sequence %d, subject %s", m.ID, m.NumDelivered, m.StreamSequence, m.Subject)
		}
		mu.Lock()
		order = append(order, m.ID)
		mu.Unlock()
		got.add(m.ID)
		return nil
	})
	waitFor(t, 10*time.Second, "all messages handled", func() bool { return got.len() == n })
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}

	if missing, extra := got.diff(want); len(missing)+len(extra) > 0 {
		t.Errorf("missing %v, extra %v", missing, extra)
	}
	if got.repeats != 0 {
		t.Errorf("%d messages handled twice", got.repeats)
	}
	if badData.Load() != 0 {
		t.Errorf("%d messages with wrong data", badData.Load())
	}
	for i, id := range order {
		if id != want[i] {
			t.Errorf("message %d is %s, want %s (stream order)", i, id, want[i])
			break
		}
	}
	labels := []string{"t", "loader", env.topo.RawStream}
	if v := counterValue(t, env.metrics.published, labels...); v != n+1 {
		t.Errorf("published = %v, want %d (the duplicate included)", v, n+1)
	}
	if v := counterValue(t, env.metrics.acked, "t", "augmenter", env.topo.RawStream); v != n {
		t.Errorf("acked = %v, want %d", v, n)
	}
	info, err := env.js.Stream(t.Context(), env.topo.RawStream)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("work-queue stream still holds %d messages after all acks", msgs)
	}
}

func TestPublishBackpressure(t *testing.T) {
	// The stream holds about 7 messages of 1 KiB; the publisher must wait
	// for the consumer instead of failing or dropping.
	env := newPubsubEnv(t, TopologyConfig{RawMaxBytes: 8 << 10}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	const n = 30
	payload := make([]byte, 1<<10)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("bp-%02d", i))
	}

	var published atomic.Int32
	pubErr := make(chan error, 1)
	go func() {
		for _, id := range want {
			if _, err := pub.Publish(t.Context(), id, payload); err != nil {
				pubErr <- err
				return
			}
			published.Add(1)
		}
		pubErr <- nil
	}()

	retries := func() float64 {
		return counterValue(t, env.metrics.publishRetries, "t", "loader", env.topo.RawStream, RetryStreamFull)
	}
	waitFor(t, 10*time.Second, "publisher blocked on the full stream", func() bool { return retries() > 0 })
	time.Sleep(200 * time.Millisecond)
	if p := published.Load(); p >= n {
		t.Fatalf("publisher finished all %d messages without a consumer; the stream bound did not hold", p)
	}
	info, err := env.js.Stream(t.Context(), env.topo.RawStream)
	if err != nil {
		t.Fatal(err)
	}
	if state := info.CachedInfo().State; state.Bytes > 8<<10 {
		t.Errorf("stream holds %d bytes, above its 8 KiB bound", state.Bytes)
	}

	got := newReceivedSet()
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		got.add(m.ID)
		return nil
	})
	select {
	case err := <-pubErr:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("publisher still blocked 20s after the consumer started")
	}
	waitFor(t, 10*time.Second, "all messages handled", func() bool { return got.len() == n })
	_ = stop()

	if missing, extra := got.diff(want); len(missing)+len(extra) > 0 {
		t.Errorf("missing %v, extra %v", missing, extra)
	}
	if got.repeats != 0 {
		t.Errorf("%d messages handled twice", got.repeats)
	}
	if r := retries(); r <= 0 {
		t.Errorf("stream_full retries = %v, want > 0", r)
	}
}

func TestPublishRejectsOversizedPayload(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{RawMaxBytes: 64 << 10}, EmbeddedOptions{MaxPayload: 128 << 10})
	pub := env.publisher(t, "loader")

	tests := []struct {
		name string
		size int
		want []string
	}{
		{name: "above max payload", size: 200 << 10, want: []string{"204800 payload bytes", "max payload of 131072 bytes"}},
		{name: "above stream bound", size: 100 << 10, want: []string{"max bytes of stream CYCLEGAN_RAW_t is 65536"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := pub.Publish(ctx, "big", make([]byte, tt.size))
			if !errors.Is(err, ErrPayloadTooLarge) {
				t.Fatalf("Publish error = %v, want ErrPayloadTooLarge", err)
			}
			if absent := containsAll(err.Error(), tt.want...); len(absent) > 0 {
				t.Errorf("error %q lacks %q", err, absent)
			}
		})
	}

	if _, err := pub.Publish(t.Context(), "", []byte("x")); !errors.Is(err, ErrMissingMsgID) {
		t.Errorf("Publish without id = %v, want ErrMissingMsgID", err)
	}
	if v := counterValue(t, env.metrics.published, "t", "loader", env.topo.RawStream); v != 0 {
		t.Errorf("published = %v after rejected publishes, want 0", v)
	}
}

func TestPublishGivesUpWhenContextEnds(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{RawMaxBytes: 64 << 10}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	payload := make([]byte, 20<<10)
	for i := range 3 {
		if _, err := pub.Publish(t.Context(), fmt.Sprintf("fill-%d", i), payload); err != nil {
			t.Fatalf("Publish fill-%d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := pub.Publish(ctx, "overflow", payload)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish on a full stream = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), RetryStreamFull) {
		t.Errorf("error %q does not give the retry reason", err)
	}
}

func TestConsumerRedeliversAfterConsumerDies(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	if _, err := pub.Publish(t.Context(), "orphan", []byte("x")); err != nil {
		t.Fatal(err)
	}
	const ackWait = time.Second

	// The first process receives the message and dies before acking: its
	// connection goes away while the handler is still working.
	log, _ := newTestLogger(t)
	deadConn, deadJS := connectJS(t, env.srv.ClientURL(), log)
	dead := env.consumer(t, deadJS, ConsumerOptions{AckWait: ackWait, DrainTimeout: 100 * time.Millisecond})
	received := make(chan struct{})
	release := make(chan struct{})
	stopDead := runConsumer(t, dead, func(ctx context.Context, m *Message) error {
		close(received)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("first consumer got no message")
	}
	deadConn.Close()
	diedAt := time.Now()

	// A second process bound to the same durable gets it after the ack wait.
	type delivery struct {
		id       string
		attempts uint64
		at       time.Time
	}
	second := make(chan delivery, 4)
	alive := env.consumer(t, nil, ConsumerOptions{AckWait: ackWait})
	stopAlive := runConsumer(t, alive, func(ctx context.Context, m *Message) error {
		second <- delivery{id: m.ID, attempts: m.NumDelivered, at: time.Now()}
		return nil
	})
	select {
	case d := <-second:
		if d.id != "orphan" {
			t.Errorf("second consumer got %q, want orphan", d.id)
		}
		if d.attempts != 2 {
			t.Errorf("NumDelivered = %d, want 2", d.attempts)
		}
		// Tolerance for the server's ack-wait timer granularity.
		if early := d.at.Sub(diedAt); early < ackWait/2 {
			t.Errorf("redelivered %s after the first consumer died, before the %s ack wait", early, ackWait)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("message not redelivered to the second consumer")
	}
	close(release)
	_ = stopAlive()
	_ = stopDead()

	if v := counterValue(t, env.metrics.redelivered, "t", "augmenter", env.topo.RawStream); v != 1 {
		t.Errorf("redelivered = %v, want 1", v)
	}
}

func TestConsumerTerminatesPoison(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	for _, id := range []string{"good-1", "poison", "good-2"} {
		if _, err := pub.Publish(t.Context(), id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}

	calls := newReceivedSet()
	log, buf := newTestLogger(t)
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 500 * time.Millisecond, NakDelay: 100 * time.Millisecond, Logger: log})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		calls.add(m.ID)
		if m.ID == "poison" {
			return fmt.Errorf("decode pair: header too short: %w", ErrPoison)
		}
		return nil
	})
	waitFor(t, 10*time.Second, "three messages handled", func() bool { return calls.len() == 3 })
	// Past several ack waits and nak delays: a redelivery would show here.
	time.Sleep(1500 * time.Millisecond)
	_ = stop()

	if calls.repeats != 0 {
		t.Errorf("handler called %d extra times; the poison message was redelivered", calls.repeats)
	}
	labels := []string{"t", "augmenter", env.topo.RawStream}
	if v := counterValue(t, env.metrics.terminated, labels...); v != 1 {
		t.Errorf("terminated = %v, want 1", v)
	}
	if v := counterValue(t, env.metrics.acked, labels...); v != 2 {
		t.Errorf("acked = %v, want 2", v)
	}
	if absent := containsAll(buf.String(), "poison message terminated", "stream_seq=2", "msg_id=poison", "header too short"); len(absent) > 0 {
		t.Errorf("log lacks %q:\n%s", absent, buf.String())
	}
	info, err := cons.consumer().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer has %d ack pending and %d pending, want 0 and 0", info.NumAckPending, info.NumPending)
	}
}

func TestConsumerNakRedelivers(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	if _, err := pub.Publish(t.Context(), "flaky", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	done := make(chan uint64, 1)
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second, NakDelay: 200 * time.Millisecond})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		if calls.Add(1) == 1 {
			return errors.New("trainer busy")
		}
		done <- m.NumDelivered
		return nil
	})
	select {
	case n := <-done:
		if n != 2 {
			t.Errorf("NumDelivered on success = %d, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nacked message not redelivered")
	}
	_ = stop()
	labels := []string{"t", "augmenter", env.topo.RawStream}
	for name, want := range map[string]float64{"nacked": 1, "acked": 1, "redelivered": 1, "terminated": 0} {
		c := map[string]*prometheus.CounterVec{"nacked": env.metrics.nacked, "acked": env.metrics.acked, "redelivered": env.metrics.redelivered, "terminated": env.metrics.terminated}[name]
		if v := counterValue(t, c, labels...); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

func TestConsumerSkipsHandledID(t *testing.T) {
	// A short duplicate window lets the stream store the same id twice, as a
	// redelivery after a lost ack would hand it over twice.
	env := newPubsubEnv(t, TopologyConfig{DuplicateWindow: 200 * time.Millisecond}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	got := newReceivedSet()
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		got.add(m.ID)
		return nil
	})
	if _, err := pub.Publish(t.Context(), "twin", []byte("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "first copy handled", func() bool { return got.len() == 1 })
	time.Sleep(400 * time.Millisecond) // past the duplicate window
	ack, err := pub.Publish(t.Context(), "twin", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Fatal("second copy was deduplicated by the stream; the test needs it stored")
	}
	labels := []string{"t", "augmenter", env.topo.RawStream}
	waitFor(t, 5*time.Second, "second copy skipped", func() bool { return counterValue(t, env.metrics.duplicates, labels...) == 1 })
	_ = stop()
	if got.repeats != 0 {
		t.Errorf("handler saw the id %d extra times", got.repeats)
	}
}

func TestConsumerGaugesAndDrain(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	for i := range 5 {
		if _, err := pub.Publish(t.Context(), fmt.Sprintf("g-%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan struct{}, 5)
	finish := make(chan struct{})
	var handled atomic.Int32
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second, GaugeInterval: 50 * time.Millisecond, DrainTimeout: 5 * time.Second})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		started <- struct{}{}
		select {
		case <-finish:
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	})
	<-started

	gauge := func(g *prometheus.GaugeVec) float64 {
		return testutil.ToFloat64(g.WithLabelValues("t", env.topo.RawStream, ConsumerAugmenter))
	}
	waitFor(t, 5*time.Second, "gauges of 4 pending and 1 ack pending", func() bool {
		return gauge(env.metrics.pending) == 4 && gauge(env.metrics.ackPending) == 1
	})

	// Shutdown while a message is in the handler: Run waits for it to
	// finish and acks it, and pulls nothing more.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a handler was still working", err)
	default:
	}
	close(finish)
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if handled.Load() != 1 {
		t.Errorf("handled %d messages, want 1", handled.Load())
	}
	if v := counterValue(t, env.metrics.acked, "t", "augmenter", env.topo.RawStream); v != 1 {
		t.Errorf("acked = %v after drain, want 1", v)
	}
	info, err := cons.consumer().Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 4 {
		t.Errorf("after drain: %d ack pending, %d pending; want 0 and 4", info.NumAckPending, info.NumPending)
	}
}

func TestConsumerDrainTimeoutCancelsHandler(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	if _, err := pub.Publish(t.Context(), "slow", []byte("x")); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: 5 * time.Second, DrainTimeout: 200 * time.Millisecond})
	stop := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	<-started
	begin := time.Now()
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Run took %s to return with a 200ms drain timeout", took)
	}
	if v := counterValue(t, env.metrics.nacked, "t", "augmenter", env.topo.RawStream); v != 1 {
		t.Errorf("nacked = %v, want 1 (the message handed back)", v)
	}
}

func TestNewConsumerRejectsBadOptions(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	_, err := NewConsumer(t.Context(), env.js, ConsumerOptions{Stream: env.topo.RawStream, Durable: "x", AckWait: time.Second, InProgressInterval: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "shorter than ack wait") {
		t.Errorf("NewConsumer with in-progress interval above ack wait = %v", err)
	}
	if _, err := NewConsumer(t.Context(), env.js, ConsumerOptions{Durable: "x"}); err == nil {
		t.Error("NewConsumer without a stream succeeded")
	}
	if _, err := NewPublisher(t.Context(), env.js, PublisherOptions{Stream: "CYCLEGAN_RAW_missing", Subject: "cyclegan.missing.raw"}); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("NewPublisher on a missing stream = %v, want ErrStreamNotFound", err)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics on the same registry: %v", err)
	}
	a.initPublisher("r", "loader", "S")
	b.published.WithLabelValues("r", "loader", "S").Inc()
	if v := counterValue(t, a.published, "r", "loader", "S"); v != 1 {
		t.Errorf("counter seen through the first Metrics = %v, want 1", v)
	}
	n, err := testutil.GatherAndCount(reg, "cyclegan_pipeline_publish_retries_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(retryReasons) {
		t.Errorf("publish retry series = %d, want one per reason (%d) at zero", n, len(retryReasons))
	}
}

func TestRecentIDsForgetsOldest(t *testing.T) {
	r := newRecentIDs(2)
	r.add("a")
	r.add("b")
	r.add("a") // already present: no change
	r.add("c") // evicts a
	for id, want := range map[string]bool{"a": false, "b": true, "c": true} {
		if got := r.contains(id); got != want {
			t.Errorf("contains(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestConsumerInProgressCoversLongWork(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	pub := env.publisher(t, "loader")
	if _, err := pub.Publish(t.Context(), "long", []byte("x")); err != nil {
		t.Fatal(err)
	}

	const ackWait = 600 * time.Millisecond
	got := newReceivedSet()
	done := make(chan uint64, 2)
	cons := env.consumer(t, nil, ConsumerOptions{AckWait: ackWait, InProgressInterval: 150 * time.Millisecond})
	// A second process on the same durable would get the message if the
	// ack wait ran out during the work.
	other := env.consumer(t, nil, ConsumerOptions{AckWait: ackWait, InProgressInterval: 150 * time.Millisecond})
	handler := func(ctx context.Context, m *Message) error {
		got.add(m.ID)
		time.Sleep(3 * ackWait)
		done <- m.NumDelivered
		return nil
	}
	stop := runConsumer(t, cons, handler)
	stopOther := runConsumer(t, other, handler)

	select {
	case n := <-done:
		if n != 1 {
			t.Errorf("NumDelivered = %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long work did not finish")
	}
	time.Sleep(2 * ackWait)
	_ = stop()
	_ = stopOther()

	if got.repeats != 0 {
		t.Errorf("message handled %d extra times although in-progress acks were sent", got.repeats)
	}
	if v := counterValue(t, env.metrics.redelivered, "t", "augmenter", env.topo.RawStream); v != 0 {
		t.Errorf("redelivered = %v, want 0", v)
	}
}

func TestCheckpointConsumerSeesEveryAnnouncement(t *testing.T) {
	env := newPubsubEnv(t, TopologyConfig{}, EmbeddedOptions{})
	log, _ := newTestLogger(t)
	pub, err := NewPublisher(t.Context(), env.js, PublisherOptions{
		Stream: env.topo.CheckpointStream, Subject: env.topo.CheckpointSubject, Run: "t", Stage: "trainer", Metrics: env.metrics, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Announcements published before the evaluator's consumer exists.
	var want []string
	for step := 100; step <= 500; step += 100 {
		id := CheckpointName("t", uint64(step))
		want = append(want, id)
		if _, err := pub.Publish(t.Context(), id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}

	newEvaluator := func() *Consumer {
		c, err := NewConsumer(t.Context(), env.js, ConsumerOptions{
			Stream: env.topo.CheckpointStream, Durable: ConsumerEvaluator, Run: "t", Stage: "evaluator",
			Metrics: env.metrics, Logger: log, AckWait: 5 * time.Second, PullWait: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	got := newReceivedSet()
	stop := runConsumer(t, newEvaluator(), func(ctx context.Context, m *Message) error {
		got.add(m.ID)
		return nil
	})
	waitFor(t, 10*time.Second, "all announcements", func() bool { return got.len() == len(want) })
	_ = stop()
	if missing, extra := got.diff(want); len(missing)+len(extra) > 0 || got.repeats != 0 {
		t.Errorf("missing %v, extra %v, repeats %d", missing, extra, got.repeats)
	}

	// Limits retention keeps acked announcements, and the durable consumer
	// remembers its position: a restarted evaluator gets only new ones.
	s, err := env.js.Stream(t.Context(), env.topo.CheckpointStream)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := s.CachedInfo().State.Msgs; msgs != uint64(len(want)) {
		t.Errorf("checkpoint stream holds %d messages after acks, want %d", msgs, len(want))
	}
	if _, err := pub.Publish(t.Context(), CheckpointName("t", 600), []byte("600")); err != nil {
		t.Fatal(err)
	}
	later := make(chan string, 8)
	stop = runConsumer(t, newEvaluator(), func(ctx context.Context, m *Message) error {
		later <- m.ID
		return nil
	})
	select {
	case id := <-later:
		if id != "t/step-600.safetensors" {
			t.Errorf("restarted evaluator got %s first, want only the new step 600", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("restarted evaluator got nothing")
	}
	_ = stop()
}
