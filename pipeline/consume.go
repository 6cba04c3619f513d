package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is one stream message handed to a Handler.
type Message struct {
	ID             string // Nats-Msg-Id set by the publisher; may be empty
	Subject        string
	Data           []byte
	Header         nats.Header
	StreamSequence uint64    // position in the stream, for logs
	NumDelivered   uint64    // 1 on the first delivery
	Published      time.Time // when the stream stored the message
}

// Handler processes one message. A nil error acks the message. An error
// wrapping ErrPoison terminates it, so it is never delivered again, and the
// stream sequence and the error are logged. Any other error naks it, and the
// server delivers it again after the consumer's NakDelay. ctx stays valid for
// DrainTimeout after the consumer's context ends, so that the current unit
// of work can finish.
type Handler func(ctx context.Context, msg *Message) error

// ConsumerOptions configure a Consumer. Stream and Durable are required.
type ConsumerOptions struct {
	Stream  string // stream name
	Durable string // durable consumer name, shared by every process of a stage
	Run     string // run label of the metrics
	Stage   string // stage label of the metrics

	Metrics *Metrics     // nil counts into unregistered collectors
	Logger  *slog.Logger // nil discards the records

	// AckWait is how long the server waits for an ack before it delivers
	// the message again, to this or another process. It should exceed the
	// time one message takes; longer work is covered by in-progress acks
	// sent every InProgressInterval. Defaults: 30s and AckWait/3.
	AckWait            time.Duration
	InProgressInterval time.Duration
	// MaxAckPending bounds the messages delivered and not yet acked,
	// across all processes bound to the consumer. Default 16.
	MaxAckPending int
	// NakDelay is how long a message whose handler failed waits before its
	// redelivery. Default 1s.
	NakDelay time.Duration
	// Concurrency is the number of messages this process handles at once.
	// Each worker pulls one message at a time, so no message waits in a
	// client buffer while its ack wait runs. Default 1.
	Concurrency int
	// PullWait bounds one pull request; an idle worker renews it. Default 5s.
	PullWait time.Duration
	// DrainTimeout is how long a handler may go on after the consumer's
	// context ends. Default 30s.
	DrainTimeout time.Duration
	// DedupIDs is how many handled message ids the consumer remembers; a
	// redelivered message with a remembered id is acked without calling the
	// handler. Redeliveries happen when an ack is lost, for example while
	// the server restarts. Default 10000; negative turns it off.
	DedupIDs int
	// GaugeInterval is the period of refreshing the pending and ack-pending
	// gauges from the consumer's info. Default 5s.
	GaugeInterval time.Duration
}

func (o *ConsumerOptions) setDefaults() {
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil) // only registering can fail, and nil registers nothing
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.InProgressInterval <= 0 {
		o.InProgressInterval = o.AckWait / 3
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 16
	}
	if o.NakDelay <= 0 {
		o.NakDelay = time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.PullWait <= 0 {
		o.PullWait = 5 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.DedupIDs == 0 {
		o.DedupIDs = 10000
	}
	if o.GaugeInterval <= 0 {
		o.GaugeInterval = 5 * time.Second
	}
}

// Consumer handles the messages of one durable pull consumer with explicit
// acks. Every process that makes a Consumer with the same Stream and
// Durable binds to the same server-side consumer, and the server delivers
// each message to one of them. The consumer delivers all messages from the
// start of the stream, which on a limits-retention stream (checkpoint
// announcements) means every message ever kept.
type Consumer struct {
	js   jetstream.JetStream
	mu   sync.Mutex         // guards cons, which recreate replaces
	cons jetstream.Consumer // the server-side consumer
	cfg  jetstream.ConsumerConfig
	opts ConsumerOptions
	log  *slog.Logger
	seen *recentIDs
}

// NewConsumer creates the durable consumer or updates its settings, and
// returns a Consumer bound to it.
func NewConsumer(ctx context.Context, js jetstream.JetStream, opts ConsumerOptions) (*Consumer, error) {
	if opts.Stream == "" || opts.Durable == "" {
		return nil, errors.New("new consumer: stream and durable name are required")
	}
	opts.setDefaults()
	if opts.InProgressInterval >= opts.AckWait {
		return nil, fmt.Errorf("new consumer %s: in-progress interval %s must be shorter than ack wait %s", opts.Durable, opts.InProgressInterval, opts.AckWait)
	}

	cfg := jetstream.ConsumerConfig{
		Durable:       opts.Durable,
		Description:   "CycleGAN " + opts.Durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: opts.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, opts.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on stream %s: %w (if its settings cannot change, delete the consumer)", opts.Durable, opts.Stream, err)
	}

	opts.Metrics.initConsumer(opts.Run, opts.Stage, opts.Stream, opts.Durable)
	c := &Consumer{
		js:   js,
		cons: cons,
		cfg:  cfg,
		opts: opts,
		log:  opts.Logger.With("stream", opts.Stream, "consumer", opts.Durable),
	}
	if opts.DedupIDs > 0 {
		c.seen = newRecentIDs(opts.DedupIDs)
	}
	return c, nil
}

// Run pulls and handles messages until ctx ends, then waits for the
// handlers in progress (at most DrainTimeout) and returns nil. It returns an
// error only when the connection is closed for good.
func (c *Consumer) Run(ctx context.Context, handle Handler) error {
	handlerCtx, cancel := DrainContext(ctx, c.opts.DrainTimeout)
	defer cancel()

	var wg sync.WaitGroup
	gaugeCtx, stopGauges := context.WithCancel(ctx)
	defer stopGauges()
	wg.Go(func() { c.refreshGauges(gaugeCtx) })

	errs := make([]error, c.opts.Concurrency)
	var workers sync.WaitGroup
	for i := range c.opts.Concurrency {
		workers.Go(func() { errs[i] = c.work(ctx, handlerCtx, handle) })
	}
	workers.Wait()
	stopGauges()
	wg.Wait()
	return errors.Join(errs...)
}

// work pulls one message at a time until ctx ends.
func (c *Consumer) work(ctx, handlerCtx context.Context, handle Handler) error {
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	failures := 0 // consecutive failed pulls
	for ctx.Err() == nil {
		msg, err := c.next(ctx)
		if err == nil {
			if failures > 0 {
				c.log.Info("pulling again", "failed_pulls", failures)
			}
			failures = 0
			backoff.reset()
			if msg != nil {
				c.process(handlerCtx, msg, handle)
			}
			continue
		}

		failures++
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("consume %s from %s: %w", c.opts.Durable, c.opts.Stream, err)
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
			c.log.Warn("consumer missing, creating it again", "err", err)
			if err := c.recreate(ctx); err != nil {
				c.log.Warn("recreate consumer failed", "err", err)
			}
		case failures == 1:
			c.log.Warn("pull failed, retrying", "err", err, "wait", backoff.current)
		default:
			// Repeats of a failure, as during a server outage, go to debug.
			c.log.Debug("pull failed again, retrying", "err", err, "failed_pulls", failures, "wait", backoff.current)
		}
		if !backoff.sleep(ctx) {
			return nil
		}
	}
	return nil
}

// next pulls one message, waiting at most PullWait. It returns nil and nil
// when none arrived.
func (c *Consumer) next(ctx context.Context) (jetstream.Msg, error) {
	pullCtx, cancel := context.WithTimeout(ctx, c.opts.PullWait)
	defer cancel()
	batch, err := c.consumer().Fetch(1, jetstream.FetchContext(pullCtx))
	if err != nil {
		return nil, err
	}
	for msg := range batch.Messages() {
		return msg, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return nil, err
	}
	return nil, nil
}

func (c *Consumer) consumer() jetstream.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cons
}

func (c *Consumer) recreate(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.opts.Stream, c.cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cons = cons
	c.mu.Unlock()
	return nil
}

// process runs the handler on one message and acks, naks or terminates it.
func (c *Consumer) process(ctx context.Context, raw jetstream.Msg, handle Handler) {
	labels := []string{c.opts.Run, c.opts.Stage, c.opts.Stream}
	m := c.opts.Metrics

	md, err := raw.Metadata()
	if err != nil {
		// Not a JetStream delivery, which a stream consumer never sends.
		c.log.Error("message without JetStream metadata, terminating it", "subject", raw.Subject(), "err", err)
		_ = raw.Term()
		m.terminated.WithLabelValues(labels...).Inc()
		return
	}
	msg := &Message{
		ID:             raw.Headers().Get(jetstream.MsgIDHeader),
		Subject:        raw.Subject(),
		Data:           raw.Data(),
		Header:         raw.Headers(),
		StreamSequence: md.Sequence.Stream,
		NumDelivered:   md.NumDelivered,
		Published:      md.Timestamp,
	}
	log := c.log.With("stream_seq", msg.StreamSequence, "msg_id", msg.ID)
	if msg.NumDelivered > 1 {
		m.redelivered.WithLabelValues(labels...).Inc()
		log.Info("message redelivered", "deliveries", msg.NumDelivered)
	}

	if c.seen != nil && msg.ID != "" && c.seen.contains(msg.ID) {
		m.duplicates.WithLabelValues(labels...).Inc()
		log.Info("message id handled before, acking without handling it")
		c.ack(raw, log)
		return
	}

	stopProgress := c.keepAlive(raw, log)
	err = handle(ctx, msg)
	stopProgress()

	switch {
	case err == nil:
		if c.seen != nil && msg.ID != "" {
			c.seen.add(msg.ID)
		}
		if c.ack(raw, log) {
			m.acked.WithLabelValues(labels...).Inc()
		}
	case errors.Is(err, ErrPoison):
		log.Warn("poison message terminated", "reason", err)
		if termErr := raw.TermWithReason(err.Error()); termErr != nil {
			log.Warn("terminate failed, the message will be redelivered", "err", termErr)
		}
		m.terminated.WithLabelValues(labels...).Inc()
	case ctx.Err() != nil, errors.Is(err, ErrHandBack):
		// Shutting down: hand the message back at once to another process.
		log.Debug("handler stopped by shutdown, returning the message", "err", err)
		_ = raw.Nak()
		m.nacked.WithLabelValues(labels...).Inc()
	default:
		log.Warn("handler failed, message will be redelivered", "err", err, "delay", c.opts.NakDelay)
		if nakErr := raw.NakWithDelay(c.opts.NakDelay); nakErr != nil {
			log.Warn("nak failed, the message will be redelivered after the ack wait", "err", nakErr)
		}
		m.nacked.WithLabelValues(labels...).Inc()
	}
}

// ack acknowledges raw and waits for the server to confirm, so that a lost
// ack is logged. It reports whether the server confirmed it.
func (c *Consumer) ack(raw jetstream.Msg, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := raw.DoubleAck(ctx); err != nil {
		log.Warn("ack not confirmed, the message may be redelivered", "err", err)
		return false
	}
	return true
}

// ackTimeout bounds the wait for the server to confirm an ack.
const ackTimeout = 5 * time.Second

// keepAlive sends an in-progress ack every InProgressInterval until the
// returned function is called, which returns after the sender stopped.
func (c *Consumer) keepAlive(raw jetstream.Msg, log *slog.Logger) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(c.opts.InProgressInterval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				if err := raw.InProgress(); err != nil {
					log.Debug("in-progress ack failed", "err", err)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// refreshGauges sets the pending and ack-pending gauges every GaugeInterval.
func (c *Consumer) refreshGauges(ctx context.Context) {
	ticker := time.NewTicker(c.opts.GaugeInterval)
	defer ticker.Stop()
	for {
		c.updateGauges(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (c *Consumer) updateGauges(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.GaugeInterval)
	defer cancel()
	info, err := c.consumer().Info(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Debug("consumer info failed", "err", err)
		}
		return
	}
	c.opts.Metrics.pending.WithLabelValues(c.opts.Run, c.opts.Stream, c.opts.Durable).Set(float64(info.NumPending))
	c.opts.Metrics.ackPending.WithLabelValues(c.opts.Run, c.opts.Stream, c.opts.Durable).Set(float64(info.NumAckPending))
}

// recentIDs remembers the latest n ids added, forgetting the oldest first.
type recentIDs struct {
	mu    sync.Mutex
	ring  []string
	next  int
	index map[string]struct{}
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{ring: make([]string, n), index: make(map[string]struct{}, n)}
}

func (r *recentIDs) contains(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.index[id]
	return ok
}

func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.index[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.index, old)
	}
	r.ring[r.next] = id
	r.index[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
