package augmenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// Deps are the connections, registry and logger that the augmenter shares with the
// other stages of a process.
type Deps struct {
	JetStream  jetstream.JetStream   // nil means Topology.JetStream
	Topology   *pipeline.Topology    // the run's streams and buckets; required
	Registerer prometheus.Registerer // receives the augmenter's metrics; nil registers nothing
	Metrics    *pipeline.Metrics     // publisher and consumer metrics; nil counts into unregistered collectors
	Logger     *slog.Logger          // nil discards the records
	// DrainTimeout is how long the pairs in progress may take to finish after Run's
	// context ends. 0 means the consumer's default of 30s.
	DrainTimeout time.Duration
}

// Stage is one augmenter process's share of the raw stream's durable consumer.
type Stage struct {
	cfg             Config
	run             string
	js              jetstream.JetStream
	topo            *pipeline.Topology
	pipelineMetrics *pipeline.Metrics
	drain           time.Duration
	metrics         *metrics
	log             *slog.Logger
}

// New checks cfg and deps and returns the augmenter of the run that deps.Topology
// belongs to.
func New(cfg Config, deps Deps) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Topology == nil {
		return nil, fmt.Errorf("%w: Deps.Topology is nil", ErrInvalidConfig)
	}
	js := deps.JetStream
	if js == nil {
		js = deps.Topology.JetStream
	}
	if js == nil {
		return nil, fmt.Errorf("%w: neither Deps.JetStream nor Deps.Topology.JetStream is set", ErrInvalidConfig)
	}
	run := deps.Topology.Run
	m, err := newMetrics(deps.Registerer, run)
	if err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{
		cfg:             cfg,
		run:             run,
		js:              js,
		topo:            deps.Topology,
		pipelineMetrics: deps.Metrics,
		drain:           deps.DrainTimeout,
		metrics:         m,
		log:             log.With("stage", "augmenter", "run", run),
	}, nil
}

// errRunEnded is the cause of stopping the augmenter when the run state is finished or
// failed.
var errRunEnded = errors.New("run ended")

// Run augments raw pairs until ctx ends or the run state turns finished or failed, then
// lets the pairs in progress finish (at most the drain timeout after ctx ends) and
// returns nil. A raw pair that cannot be augmented is terminated and counted. Run
// returns an error when the consumer or publisher cannot be set up, or when the NATS
// connection is closed for good.
//
// A run state that is already finished or failed when Run starts makes it return nil at
// once. So a caller that continues a finished run writes the running state before it
// starts the augmenters.
func (s *Stage) Run(ctx context.Context) error {
	store, err := pipeline.NewRunStore(s.topo.Runs, s.run, nil, s.log)
	if err != nil {
		return err
	}
	state, _, err := store.Get(ctx)
	switch {
	case errors.Is(err, pipeline.ErrRunStateNotFound):
	case err != nil:
		return fmt.Errorf("read run state: %w", err)
	case state.Status.Final():
		s.log.Info("augmenter not starting because the run has ended", "status", state.Status, "step", state.Step)
		return nil
	}

	// ended is canceled only by the end of the run, runCtx by that or by ctx.
	ended, endRun := context.WithCancel(context.Background())
	defer endRun()
	runCtx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	wg.Go(func() {
		watchRunEnd(runCtx, store, func(cause error) {
			endRun()
			cancel(cause)
		}, s.log)
	})

	pub, err := pipeline.NewPublisher(runCtx, s.js, pipeline.PublisherOptions{
		Stream:  s.topo.TrainStream,
		Subject: s.topo.TrainSubject,
		Run:     s.run,
		Stage:   "augmenter",
		Metrics: s.pipelineMetrics,
		Logger:  s.log,
	})
	if err != nil {
		return err
	}
	cons, err := pipeline.NewConsumer(runCtx, s.js, pipeline.ConsumerOptions{
		Stream:       s.topo.RawStream,
		Durable:      pipeline.ConsumerAugmenter,
		Run:          s.run,
		Stage:        "augmenter",
		Metrics:      s.pipelineMetrics,
		Logger:       s.log,
		Concurrency:  s.cfg.Concurrency,
		DrainTimeout: s.drain,
	})
	if err != nil {
		return err
	}

	s.log.Info("augmenter started", "crop_size", s.cfg.CropSize, "flip", !s.cfg.NoFlip, "seed", s.cfg.Seed, "concurrency", s.cfg.Concurrency)
	err = cons.Run(runCtx, func(hctx context.Context, msg *pipeline.Message) error {
		// hctx outlives ctx by the drain timeout, so that a pair in progress at SIGTERM is
		// published and acked. Once the run has ended the trainer takes no more pairs, and
		// a publish waiting on a full train stream would only delay the exit.
		hctx, stop := context.WithCancel(hctx)
		defer stop()
		defer context.AfterFunc(ended, stop)()
		return s.handle(hctx, pub, msg)
	})
	reason := "context ended"
	if cause := context.Cause(runCtx); cause != nil {
		reason = cause.Error()
	}
	s.log.Info("augmenter stopped", "reason", reason)
	return err
}

// handle augments one raw pair and publishes the train pair. An error wrapping
// pipeline.ErrPoison terminates the raw message; any other error returns it for a
// redelivery.
func (s *Stage) handle(ctx context.Context, pub *pipeline.Publisher, msg *pipeline.Message) error {
	raw, err := messages.DecodePair(msg.Data)
	if err != nil {
		return s.poison(ReasonMalformed, fmt.Errorf("decode raw pair at stream sequence %d: %w", msg.StreamSequence, err))
	}
	if raw.Run != s.run {
		return s.poison(ReasonWrongRun, fmt.Errorf("raw pair %d names run %q, but the stream belongs to run %q", raw.Sequence, raw.Run, s.run))
	}
	train, err := Augment(raw, s.cfg.CropSize, uint64(s.cfg.Seed), !s.cfg.NoFlip)
	switch {
	case errors.Is(err, ErrPairTooSmall):
		return s.poison(ReasonTooSmall, err)
	case errors.Is(err, ErrNotRawPair):
		return s.poison(ReasonNotRaw, err)
	case err != nil:
		return s.poison(ReasonMalformed, err)
	}

	payload, err := messages.EncodePair(train)
	if err != nil {
		return s.poison(ReasonMalformed, fmt.Errorf("encode train pair %d: %w", raw.Sequence, err))
	}
	if _, err := pub.Publish(ctx, TrainMessageID(s.run, raw.Sequence), payload); err != nil {
		if ctx.Err() != nil {
			// The stage is stopping, so the raw pair goes back to the stream for the next augmenter.
			return fmt.Errorf("publish train pair %d: %w: %w", raw.Sequence, pipeline.ErrHandBack, err)
		}
		return fmt.Errorf("publish train pair %d: %w", raw.Sequence, err)
	}
	s.metrics.pairs.Inc()
	return nil
}

// poison counts a rejected raw pair and wraps err with pipeline.ErrPoison, which makes
// the consumer terminate the message and log it with its stream sequence.
func (s *Stage) poison(reason string, err error) error {
	s.metrics.skipped.WithLabelValues(reason).Inc()
	return fmt.Errorf("%w: %w", pipeline.ErrPoison, err)
}

// TrainMessageID returns the Nats-Msg-Id of the train pair with sequence. A raw pair
// handled twice (a redelivery to another process) gives the same id, so the train
// stream stores it once within its duplicate window.
func TrainMessageID(run string, sequence uint64) string {
	return fmt.Sprintf("%s.train.%d", run, sequence)
}

// watchRunEnd calls end with a cause wrapping errRunEnded once the run state is finished
// or failed. It returns then, or when ctx ends.
func watchRunEnd(ctx context.Context, store *pipeline.RunStore, end func(cause error), log *slog.Logger) {
	for {
		state, err := store.WaitFinal(ctx)
		if err == nil {
			log.Info("run ended, stopping the augmenter", "status", state.Status, "step", state.Step)
			end(fmt.Errorf("%w: status %s at step %d", errRunEnded, state.Status, state.Step))
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("watching the run state failed, watching again in 1s", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
