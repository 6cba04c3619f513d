package trainer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// Stage is the stage label of the pipeline metrics the trainer's consumer
// and publisher report.
const Stage = "trainer"

// Deps are the connections, metrics and logger that the trainer shares with
// the other stages of a process.
type Deps struct {
	Topology   *pipeline.Topology    // required: streams and buckets of the run
	JetStream  jetstream.JetStream   // nil means Topology.JetStream
	Registerer prometheus.Registerer // nil registers no metrics
	Metrics    *pipeline.Metrics     // consumer and publisher metrics; nil counts into unregistered ones
	Logger     *slog.Logger          // nil discards the records
	Now        func() time.Time      // nil means time.Now
}

// Trainer is the training stage of one run.
type Trainer struct {
	cfg      Config
	run      string
	runDir   string // <output>/<run>
	topo     *pipeline.Topology
	js       jetstream.JetStream
	store    *pipeline.RunStore
	pipeline *pipeline.Metrics
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time

	announcer      *pipeline.Publisher // set by Run
	lastCheckpoint int64               // step of the newest stored checkpoint, -1 for none
	// lossPlotSkipped is the number of malformed metrics.jsonl lines that
	// the last loss chart skipped.
	lossPlotSkipped int
}

// New returns a Trainer for the run of deps.Topology.
func New(cfg Config, deps Deps) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Topology == nil {
		return nil, errors.New("new trainer: Deps.Topology is required")
	}
	js := deps.JetStream
	if js == nil {
		js = deps.Topology.JetStream
	}
	if js == nil {
		return nil, errors.New("new trainer: Deps.JetStream and Topology.JetStream are both nil")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	run := deps.Topology.Run
	log = log.With("stage", Stage, "run", run)

	m, err := newMetrics(deps.Registerer, run)
	if err != nil {
		return nil, fmt.Errorf("new trainer: %w", err)
	}
	store, err := pipeline.NewRunStore(deps.Topology.Runs, run, now, log)
	if err != nil {
		return nil, fmt.Errorf("new trainer: %w", err)
	}
	return &Trainer{
		cfg:            cfg,
		run:            run,
		runDir:         filepath.Join(cfg.Output, run),
		topo:           deps.Topology,
		js:             js,
		store:          store,
		pipeline:       deps.Metrics,
		metrics:        m,
		log:            log,
		now:            now,
		lastCheckpoint: -1,
	}, nil
}

// Run trains until the run reaches its last step, ctx ends, or training
// fails. At the last step it stores a final checkpoint, writes the run
// state finished and returns nil. When ctx ends it finishes the step in
// progress, acks its messages, stores a checkpoint of the current step and
// returns nil, so that a later Run resumes from it. After MaxNonFiniteSteps
// non-finite steps in a row, or any other failure, it writes the run state
// failed and returns the error. Run may be called once.
func (t *Trainer) Run(ctx context.Context) error {
	announcer, err := pipeline.NewPublisher(ctx, t.js, pipeline.PublisherOptions{
		Stream:  t.topo.CheckpointStream,
		Subject: t.topo.CheckpointSubject,
		Run:     t.run,
		Stage:   Stage,
		Metrics: t.pipeline,
		Logger:  t.log,
	})
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	t.announcer = announcer

	if t.cfg.Fresh {
		if err := Reset(ctx, t.topo, t.cfg.Output, t.log); err != nil {
			return fmt.Errorf("trainer: %w", err)
		}
	}
	m, err := t.start(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			t.log.Info("stopped before training started", "err", err)
			return nil
		}
		return t.fail(ctx, err)
	}
	defer m.Close()

	total := t.cfg.totalSteps(m.Config())
	if err := t.setStatus(ctx, m, pipeline.StatusRunning, nil); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	t.log.Info("training", "step", m.Steps(), "total_steps", total, "batch_size", m.Config().BatchSize,
		"dataset_size", m.Config().DatasetSize, "checkpoint_every", t.cfg.CheckpointEvery)

	stop, err := t.train(ctx, m, total)
	if err != nil {
		return t.fail(ctx, err)
	}

	// The final checkpoint runs after ctx may have ended, bounded by the
	// drain timeout.
	drainCtx, cancel := pipeline.DrainContext(ctx, t.cfg.drainTimeout())
	defer cancel()
	if m.Steps() != t.lastCheckpoint && (m.Steps() > 0 || stop == stopFinished) {
		if _, err := t.saveCheckpoint(drainCtx, m); err != nil {
			return fmt.Errorf("trainer: last checkpoint: %w", err)
		}
	}
	if stop == stopInterrupted {
		t.log.Info("training interrupted, resume by running again with the same run id", "step", m.Steps())
		return nil
	}
	if err := t.setStatus(drainCtx, m, pipeline.StatusFinished, nil); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	t.log.Info("training finished", "step", m.Steps(), "epoch", m.Config().Epoch(m.Steps()))
	return nil
}

// start returns the model to train: the one of the checkpoint the run state
// names, or a new one built from the settings.
func (t *Trainer) start(ctx context.Context) (*model.CycleGAN, error) {
	want, err := t.cfg.ModelConfig()
	if err != nil {
		return nil, err
	}

	state, _, err := t.store.Get(ctx)
	if err != nil && !errors.Is(err, pipeline.ErrRunStateNotFound) {
		return nil, err
	}
	if err != nil || state.Checkpoint == "" {
		m, err := model.New(want, uint64(t.cfg.Seed))
		if err != nil {
			return nil, fmt.Errorf("build model: %w", err)
		}
		t.log.Info("starting a new run", "preset", want.Preset, "crop_size", want.CropSize, "ngf", want.NGF,
			"ndf", want.NDF, "blocks", want.Blocks, "batch_size", want.BatchSize, "seed", t.cfg.Seed)
		return m, nil
	}

	data, digest, err := t.loadCheckpoint(ctx, state.Checkpoint)
	if err != nil {
		return nil, err
	}
	m, err := model.Resume(data)
	if err != nil {
		return nil, fmt.Errorf("resume from %s: %w", state.Checkpoint, err)
	}
	if diffs := configDifferences(m.Config(), want); len(diffs) > 0 {
		t.log.Warn("checkpoint config differs from the settings, training on with the checkpoint's",
			"object", state.Checkpoint, "differences", diffs)
	}
	t.lastCheckpoint = m.Steps()
	t.log.Info("resumed from checkpoint", "object", state.Checkpoint, "step", m.Steps(),
		"epoch", m.Config().Epoch(m.Steps()), "sha256", digest, "bytes", len(data))
	return m, nil
}

// stopReason is the cause of a training loop's end without an error.
type stopReason int

const (
	stopFinished    stopReason = iota // the run reached its last step
	stopInterrupted                   // ctx ended
)

// train runs training steps until the model reaches step total or ctx
// ends, with the consumer feeding the batches.
func (t *Trainer) train(ctx context.Context, m *model.CycleGAN, total int64) (stopReason, error) {
	if m.Steps() >= total {
		return stopFinished, nil
	}
	mc := m.Config()
	b := newBatcher(mc.CropSize)
	// One handler per pair of a batch, no more: handlers beyond a batch would
	// race to hand their pairs over, so the order of the pairs, and with it the
	// training, would change from run to run. At batch size 1 the pairs come in
	// stream order. Fetching the next pair only after a step did not slow
	// training: 150 steps at the cpu preset ran at 8.2 images/s with one
	// handler and 8.1 with two.
	consumer, err := pipeline.NewConsumer(ctx, t.js, pipeline.ConsumerOptions{
		Stream:        t.topo.TrainStream,
		Durable:       pipeline.ConsumerTrainer,
		Run:           t.run,
		Stage:         Stage,
		Metrics:       t.pipeline,
		Logger:        t.log,
		Concurrency:   mc.BatchSize,
		MaxAckPending: max(16, 2*mc.BatchSize),
		DrainTimeout:  t.cfg.drainTimeout(),
	})
	if err != nil {
		return 0, err
	}

	consumerCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumerDone := make(chan struct{})
	var consumerErr error
	go func() {
		defer close(consumerDone)
		consumerErr = consumer.Run(consumerCtx, b.handle)
	}()

	stop, err := t.loop(ctx, m, total, b, consumerDone)
	// Handlers still waiting to hand over a pair return it to the stream;
	// the consumer returns once the handlers in progress have acked.
	b.stop()
	stopConsumer()
	<-consumerDone
	if err != nil {
		return 0, err
	}
	if consumerErr != nil {
		return 0, consumerErr
	}
	return stop, nil
}

// loop is the training loop proper: wait for a batch, step, ack, record,
// checkpoint when due.
func (t *Trainer) loop(ctx context.Context, m *model.CycleGAN, total int64, b *batcher, consumerDone <-chan struct{}) (stopReason, error) {
	mc := m.Config()
	imageLen := 3 * mc.CropSize * mc.CropSize
	bufA := make([]float32, 0, mc.BatchSize*imageLen)
	bufB := make([]float32, 0, mc.BatchSize*imageLen)
	meter := newRateMeter()
	meter.add(t.now())
	waitCounter := t.metrics.waitSeconds.WithLabelValues(t.run)
	stepHistogram := t.metrics.stepDuration.WithLabelValues(t.run)

	for m.Steps() < total {
		waitStart := t.now()
		batch, err := b.next(ctx, mc.BatchSize, consumerDone)
		waitCounter.Add(t.now().Sub(waitStart).Seconds())
		if err != nil {
			release(batch, errStopped)
			return stopInterrupted, nil
		}

		bufA, bufB, err = appendBatch(bufA[:0], bufB[:0], batch)
		if err != nil {
			release(batch, err)
			return 0, err
		}
		stepStart := t.now()
		res, err := m.Step(bufA, bufB)
		stepHistogram.Observe(t.now().Sub(stepStart).Seconds())

		var nonFinite *model.NonFiniteError
		switch {
		case err == nil:
			release(batch, nil)
			t.recordStep(res, total, mc.BatchSize, meter)
		case errors.As(err, &nonFinite):
			// The model kept its state; the batch is acked because training
			// on it again would not make the loss finite.
			release(batch, nil)
			t.metrics.nonFinite.WithLabelValues(t.run).Inc()
			t.log.Warn("non-finite step skipped", "step", nonFinite.Step, "loss", nonFinite.Name,
				"value", nonFinite.Value, "first_stream_seq", batch[0].sequence)
			if errors.Is(err, model.ErrTooManyNonFinite) {
				return 0, fmt.Errorf("training stopped at step %d: %w", m.Steps(), err)
			}
			continue
		default:
			release(batch, err)
			return 0, fmt.Errorf("training step %d: %w", m.Steps(), err)
		}

		if step := m.Steps(); step%int64(t.cfg.CheckpointEvery) == 0 && step < total {
			t.periodicCheckpoint(ctx, m)
		}
	}
	return stopFinished, nil
}

// periodicCheckpoint stores a checkpoint and logs a failure instead of
// returning it, so that a transient outage does not stop training. It runs
// to the end when ctx ends meanwhile, bounded by the drain timeout.
func (t *Trainer) periodicCheckpoint(ctx context.Context, m *model.CycleGAN) {
	drainCtx, cancel := pipeline.DrainContext(ctx, t.cfg.drainTimeout())
	defer cancel()
	if _, err := t.saveCheckpoint(drainCtx, m); err != nil {
		t.metrics.checkpointErr.WithLabelValues(t.run).Inc()
		t.log.Error("checkpoint failed, training goes on", "step", m.Steps(), "err", err)
	}
}

// recordStep updates the metrics, calls OnStep and, every LogEvery steps
// and at the last one, logs the step and appends it to metrics.jsonl.
func (t *Trainer) recordStep(res model.StepResult, total int64, batchSize int, meter *rateMeter) {
	now := t.now()
	meter.add(now)
	imagesPerStep := 2 * batchSize // A and B

	var imagesPerSecond float64
	var eta time.Duration
	if period := meter.stepPeriod(); period > 0 {
		imagesPerSecond = float64(imagesPerStep) / period.Seconds()
		eta = period * time.Duration(total-res.Step)
	}

	t.metrics.steps.WithLabelValues(t.run).Inc()
	t.metrics.images.WithLabelValues(t.run).Add(float64(imagesPerStep))
	t.metrics.learningRate.WithLabelValues(t.run).Set(res.LearningRate)
	t.metrics.epoch.WithLabelValues(t.run).Set(float64(res.Epoch))
	for i, name := range model.LossNames {
		t.metrics.loss.WithLabelValues(t.run, name).Set(res.Losses[i])
	}

	if t.cfg.OnStep != nil {
		t.cfg.OnStep(Progress{
			Run:             t.run,
			Step:            res.Step,
			TotalSteps:      total,
			Epoch:           res.Epoch,
			Losses:          res.Losses,
			LearningRate:    res.LearningRate,
			ImagesPerSecond: imagesPerSecond,
			ETA:             eta,
		})
	}

	if res.Step%int64(t.cfg.LogEvery) != 0 && res.Step != total {
		return
	}
	attrs := []any{"step", res.Step, "total_steps", total, "epoch", res.Epoch}
	for i, name := range model.LossNames {
		attrs = append(attrs, name, res.Losses[i])
	}
	attrs = append(attrs, "lr", res.LearningRate, "images_per_second", imagesPerSecond, "eta", eta.Round(time.Second))
	t.log.Info("train step", attrs...)

	record := trainRecord{
		Kind:            "train",
		Step:            res.Step,
		Epoch:           res.Epoch,
		LearningRate:    res.LearningRate,
		Losses:          lossMap(res.Losses),
		ImagesPerSecond: imagesPerSecond,
		Time:            now.UTC(),
	}
	if err := appendRecord(filepath.Join(t.runDir, MetricsFile), record); err != nil {
		t.log.Warn("metrics record not written", "step", res.Step, "err", err)
	}
}

// setStatus writes status, m's step and epoch, and cause (for failed) into
// the run state, keeping the latest checkpoint.
func (t *Trainer) setStatus(ctx context.Context, m *model.CycleGAN, status pipeline.RunStatus, cause error) error {
	_, err := t.store.Modify(ctx, func(s *pipeline.RunState, _ bool) error {
		s.Status = status
		s.Error = ""
		if cause != nil {
			s.Error = cause.Error()
		}
		if m != nil {
			s.Step = uint64(m.Steps())
			s.Epoch = uint64(m.Config().Epoch(m.Steps()))
		}
		return nil
	})
	return err
}

// fail writes the run state failed with cause and returns cause. The write
// runs after ctx may have ended, bounded by the drain timeout.
func (t *Trainer) fail(ctx context.Context, cause error) error {
	if ctx.Err() != nil && errors.Is(cause, ctx.Err()) {
		// Stopped, not failed: a later Run resumes.
		return fmt.Errorf("trainer: %w", cause)
	}
	t.log.Error("training failed", "err", cause)
	drainCtx, cancel := pipeline.DrainContext(ctx, t.cfg.drainTimeout())
	defer cancel()
	if err := t.setStatus(drainCtx, nil, pipeline.StatusFailed, cause); err != nil {
		t.log.Error("writing the failed run state failed", "err", err)
	}
	return fmt.Errorf("trainer: %w", cause)
}
