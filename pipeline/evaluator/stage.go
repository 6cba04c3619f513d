package evaluator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
	"github.com/gocyclegan/cyclegan/pipeline/lossplot"
)

// StageName is the stage label of the evaluator's pipeline metrics.
const StageName = "evaluator"

// Deps are the dependencies that the evaluator shares with the rest of the process.
type Deps struct {
	Topology   *pipeline.Topology    // required; its JetStream is used unless JetStream is set
	JetStream  jetstream.JetStream   // nil means Topology.JetStream
	Registerer prometheus.Registerer // nil registers no metrics
	Metrics    *pipeline.Metrics     // publisher and consumer metrics; nil counts into unregistered ones
	Logger     *slog.Logger          // nil discards the records
	Now        func() time.Time      // nil means time.Now
	// Dataset is the dataset as a file system with testA and testB at its root. Nil
	// opens Config.Dataset, or the bundled dataset when that is empty.
	Dataset fs.FS
}

// Evaluator is the evaluator stage. It consumes checkpoint announcements, evaluates each
// checkpoint on the test set, writes the run's sample grids, index.html and metrics.jsonl
// lines, and publishes an evaluation report per checkpoint.
type Evaluator struct {
	cfg     Config
	deps    Deps
	run     string
	runDir  string // <output>/<run>
	fsys    fs.FS
	log     *slog.Logger
	metrics *stageMetrics

	// Set by Run before the consumer starts, then used by the handler alone.
	set       *TestSet
	publisher *pipeline.Publisher
	history   []EvalLine
	evaluated map[int64]bool // steps in history

	busy atomic.Bool // a checkpoint is being evaluated
}

// New returns an evaluator for cfg. It checks the settings, opens the dataset and
// registers the metrics; Run reads the test set.
func New(cfg Config, deps Deps) (*Evaluator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}

	if deps.Topology == nil {
		return nil, errors.New("new evaluator: topology is required")
	}
	if deps.JetStream == nil {
		deps.JetStream = deps.Topology.JetStream
	}
	if deps.JetStream == nil {
		return nil, errors.New("new evaluator: JetStream is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}

	fsys := deps.Dataset
	if fsys == nil {
		var err error
		if fsys, err = cfg.OpenDataset(); err != nil {
			return nil, fmt.Errorf("new evaluator: %w", err)
		}
	}
	run := deps.Topology.Run
	metrics, err := newStageMetrics(deps.Registerer, run)
	if err != nil {
		return nil, fmt.Errorf("new evaluator: %w", err)
	}

	return &Evaluator{
		cfg:     cfg,
		deps:    deps,
		run:     run,
		runDir:  filepath.Join(cfg.Output, run),
		fsys:    fsys,
		log:     deps.Logger.With("stage", StageName, "run", run),
		metrics: metrics,
	}, nil
}

// finishPoll is the period of checking, once the run ended, whether every announced
// checkpoint was handled.
const finishPoll = 500 * time.Millisecond

// Run loads the test set, computes the baselines and evaluates announced checkpoints
// until ctx ends, or until the run state is finished or failed and every announced
// checkpoint was handled. After ctx ends, the evaluation in progress may go on for
// Config.DrainTimeout. An evaluation cut short is handed back to the stream, so the next
// evaluator evaluates it again. Run returns nil in both cases, and an error when the test
// set cannot be read or NATS fails for good.
func (e *Evaluator) Run(ctx context.Context) error {
	e.log.Info("evaluator starting", "dataset", e.datasetName(), "output", e.runDir, "samples", e.cfg.Samples)
	if err := e.loadTestSet(ctx); err != nil {
		return err
	}
	if err := e.loadHistory(); err != nil {
		return err
	}

	var err error
	e.publisher, err = pipeline.NewPublisher(ctx, e.deps.JetStream, pipeline.PublisherOptions{
		Stream: e.deps.Topology.EvalStream, Subject: e.deps.Topology.EvalSubject,
		Run: e.run, Stage: StageName, Metrics: e.deps.Metrics, Logger: e.deps.Logger,
	})
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}
	consumer, err := pipeline.NewConsumer(ctx, e.deps.JetStream, pipeline.ConsumerOptions{
		Stream: e.deps.Topology.CheckpointStream, Durable: pipeline.ConsumerEvaluator,
		Run: e.run, Stage: StageName, Metrics: e.deps.Metrics, Logger: e.deps.Logger,
		DrainTimeout: e.cfg.DrainTimeout,
		NakDelay:     5 * time.Second, // a retried fetch or write waits for the cause to clear
	})
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}

	group, groupCtx := pipeline.NewGroup(ctx)
	consumeCtx, stopConsuming := context.WithCancel(groupCtx)
	defer stopConsuming()
	group.Go("consume checkpoint announcements", func(context.Context) error {
		return consumer.Run(consumeCtx, e.handle)
	})
	group.Go("watch run state", func(ctx context.Context) error {
		return e.stopWhenRunEnds(ctx, stopConsuming)
	})
	err = group.Wait()
	e.log.Info("evaluator stopped", "evaluated", len(e.history))
	return err
}

func (e *Evaluator) datasetName() string {
	if e.deps.Dataset != nil {
		return "given file system"
	}
	if e.cfg.Dataset == "" {
		return "bundled"
	}
	return e.cfg.Dataset
}

// maxSkipLogs bounds the test files logged one by one; the rest are counted in one line.
const maxSkipLogs = 20

func (e *Evaluator) loadTestSet(ctx context.Context) error {
	start := e.deps.Now()
	set, err := LoadTestSet(ctx, e.fsys, TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		return fmt.Errorf("evaluator: load test set of dataset %s: %w", e.datasetName(), err)
	}
	for i, s := range set.Skipped {
		if i == maxSkipLogs {
			e.log.Warn("more test files skipped", "count", len(set.Skipped)-maxSkipLogs)
			break
		}
		if s.Err != nil {
			e.log.Warn("test file skipped", "path", s.Path, "reason", s.Reason, "err", s.Err)
		} else {
			e.log.Warn("test file skipped", "path", s.Path, "reason", s.Reason)
		}
	}
	e.set = set
	if len(set.Pairs) > 0 {
		e.metrics.l1Baseline.Set(set.L1Baseline)
	}
	e.metrics.swdBaseline.Set(set.SWDBaseline)
	e.log.Info("test set loaded", "images_A", len(set.A), "images_B", len(set.B), "pairs", len(set.Pairs),
		"skipped", len(set.Skipped), "l1_baseline", set.L1Baseline, "swd_baseline", set.SWDBaseline,
		"seconds", e.deps.Now().Sub(start).Seconds())
	return nil
}

// loadHistory reads the evaluations of earlier processes from metrics.jsonl, so that a
// restarted evaluator skips the checkpoints evaluated already and its index page lists
// them, and rewrites the index page.
func (e *Evaluator) loadHistory() error {
	lines, invalid, err := ReadEvalLines(filepath.Join(e.runDir, MetricsFile))
	if err != nil {
		return fmt.Errorf("evaluator: %w", err)
	}
	if invalid > 0 {
		e.log.Warn("metrics file has lines that are not JSON objects, ignoring them",
			"file", filepath.Join(e.runDir, MetricsFile), "lines", invalid)
	}
	e.evaluated = map[int64]bool{}
	for _, line := range lines {
		if !e.evaluated[line.Step] {
			e.evaluated[line.Step] = true
			e.history = append(e.history, line)
		}
	}
	if len(e.history) > 0 {
		last := e.history[len(e.history)-1]
		e.log.Info("evaluations found from earlier runs", "count", len(e.history), "last_step", last.Step)
		e.setFigureGauges(last.Step, FiguresOf(last.Metrics))
	}
	if err := e.writeIndex(); err != nil {
		e.metrics.fail(FailureOutput)
		e.log.Warn("write index page failed", "err", err)
	}
	return nil
}

// handle evaluates the checkpoint of one announcement. Errors wrapping
// pipeline.ErrPoison terminate the announcement; other errors hand it back for a retry.
func (e *Evaluator) handle(ctx context.Context, msg *pipeline.Message) error {
	ann, err := messages.DecodeCheckpoint(msg.Data)
	if err != nil {
		e.metrics.fail(FailureAnnouncement)
		return fmt.Errorf("decode checkpoint announcement: %w: %w", pipeline.ErrPoison, err)
	}
	if ann.Run != e.run {
		e.metrics.fail(FailureAnnouncement)
		return fmt.Errorf("checkpoint announcement of run %q on the stream of run %q: %w", ann.Run, e.run, pipeline.ErrPoison)
	}
	log := e.log.With("step", ann.Step, "object", ann.Object)
	if e.evaluated[ann.Step] {
		log.Info("checkpoint evaluated before, skipping it")
		return nil
	}

	e.busy.Store(true)
	defer e.busy.Store(false)
	start := e.deps.Now()

	data, err := e.fetch(ctx, ann, log)
	if err != nil || data == nil {
		return err
	}
	tr, err := model.LoadTranslator(data)
	if err != nil {
		e.metrics.fail(FailureLoad)
		return fmt.Errorf("load generators of checkpoint %s: %w: %w", ann.Object, pipeline.ErrPoison, err)
	}
	defer tr.Close()

	ev, err := Evaluate(ctx, tr, e.set, e.cfg.Samples)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("evaluate checkpoint %s: %w", ann.Object, err)
		}
		e.metrics.fail(FailureTranslate)
		return fmt.Errorf("evaluate checkpoint %s: %w: %w", ann.Object, pipeline.ErrPoison, err)
	}

	report, err := e.publishResults(ctx, ann, ev)
	if err != nil {
		return err
	}

	seconds := e.deps.Now().Sub(start).Seconds()
	e.metrics.duration.Observe(seconds)
	e.metrics.checkpoints.Inc()
	e.setFigureGauges(ann.Step, ev.Figures)
	log.Info("checkpoint evaluated", "seconds", seconds,
		"l1_AB", ev.Figures.L1AB, "l1_BA", ev.Figures.L1BA,
		"cycle_l1_AB", ev.Figures.CycleL1AB, "cycle_l1_BA", ev.Figures.CycleL1BA,
		"swd_AB", ev.Figures.SWDAB, "swd_BA", ev.Figures.SWDBA, "samples", report.Samples)
	if e.cfg.OnReport != nil {
		e.cfg.OnReport(report)
	}
	return nil
}

// fetch reads the announced checkpoint from the Object Store and checks its size and
// SHA-256. It returns nil data and a nil error when the object no longer exists, because
// retention pruned it: the announcement is then acked without an evaluation.
func (e *Evaluator) fetch(ctx context.Context, ann *messages.Checkpoint, log *slog.Logger) ([]byte, error) {
	obs := e.deps.Topology.Checkpoints
	info, err := obs.GetInfo(ctx, ann.Object)
	if err == nil && int64(info.Size) != ann.Size {
		e.metrics.fail(FailureDigest)
		return nil, fmt.Errorf("checkpoint %s is %d bytes, announced %d: %w", ann.Object, info.Size, ann.Size, pipeline.ErrPoison)
	}
	var data []byte
	if err == nil {
		data, err = obs.GetBytes(ctx, ann.Object)
	}
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		e.metrics.fail(FailureMissingObject)
		log.Warn("checkpoint no longer in the object store, probably pruned by retention; skipping it",
			"bucket", pipeline.CheckpointBucket)
		return nil, nil
	case errors.Is(err, jetstream.ErrDigestMismatch):
		e.metrics.fail(FailureDigest)
		return nil, fmt.Errorf("read checkpoint %s: %w: %w", ann.Object, pipeline.ErrPoison, err)
	case err != nil:
		if ctx.Err() == nil {
			e.metrics.fail(FailureFetch)
		}
		return nil, fmt.Errorf("read checkpoint %s: %w", ann.Object, err)
	}

	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != ann.SHA256 || int64(len(data)) != ann.Size {
		e.metrics.fail(FailureDigest)
		return nil, fmt.Errorf("checkpoint %s has %d bytes with SHA-256 %s, announced %d bytes with %s: %w",
			ann.Object, len(data), got, ann.Size, ann.SHA256, pipeline.ErrPoison)
	}
	return data, nil
}

// publishResults writes the sample grid, publishes the evaluation report, appends the
// metrics line and rewrites the index page, in that order. The metrics line marks the
// step as done, so after a crash before it a restarted evaluator evaluates the checkpoint
// again.
func (e *Evaluator) publishResults(ctx context.Context, ann *messages.Checkpoint, ev Evaluation) (messages.EvalReport, error) {
	rel, err := WriteSampleGrid(e.runDir, ann.Step, ev.SamplesAB, ev.SamplesBA)
	if err != nil {
		e.metrics.fail(FailureOutput)
		return messages.EvalReport{}, fmt.Errorf("checkpoint %s: %w", ann.Object, err)
	}

	now := e.deps.Now().UTC()
	metrics := MetricsOf(ev.Figures, e.set.L1Baseline, e.set.SWDBaseline)
	report := messages.EvalReport{
		Run:     e.run,
		Step:    ann.Step,
		Metrics: metrics,
		Samples: []string{e.reportPath(rel)},
		Created: now,
	}
	payload, err := messages.EncodeEvalReport(&report)
	if err != nil {
		e.metrics.fail(FailureReport)
		return messages.EvalReport{}, fmt.Errorf("encode evaluation report of step %d: %w: %w", ann.Step, pipeline.ErrPoison, err)
	}
	// The id makes a report repeated after a crash, within the stream's duplicate
	// window, a duplicate that the stream drops. The digest keeps the report of a run
	// started over with --fresh from being dropped as a duplicate of the old one.
	msgID := "eval-" + e.run + "-" + strconv.FormatInt(ann.Step, 10) + "-" + ann.SHA256[:16]
	if _, err := e.publisher.Publish(ctx, msgID, payload); err != nil {
		return messages.EvalReport{}, fmt.Errorf("publish evaluation report of step %d: %w", ann.Step, err)
	}

	line := EvalLine{Kind: kindEval, Step: ann.Step, Epoch: ann.Epoch, Metrics: metrics, Samples: []string{rel}, Time: now}
	if err := AppendEvalLine(filepath.Join(e.runDir, MetricsFile), line); err != nil {
		e.metrics.fail(FailureOutput)
		return messages.EvalReport{}, err
	}
	e.history = append(e.history, line)
	e.evaluated[ann.Step] = true
	if err := e.writeIndex(); err != nil {
		// The next evaluation rewrites the page, so this one is not retried.
		e.metrics.fail(FailureOutput)
		e.log.Warn("write index page failed", "step", ann.Step, "err", err)
	}
	// The trainer draws the chart at each checkpoint, before this evaluation exists, so
	// redrawing it here adds the new figures without waiting for the next checkpoint.
	chart := filepath.Join(e.runDir, lossplot.FileName)
	if _, err := lossplot.Write(filepath.Join(e.runDir, MetricsFile), chart); err != nil {
		e.metrics.fail(FailureOutput)
		e.log.Warn("write loss chart failed", "step", ann.Step, "path", chart, "err", err)
	}

	return report, nil
}

// reportPath returns the path of a sample grid for the report: the output folder, run and
// rel joined, or rel alone when that is longer than a report allows.
func (e *Evaluator) reportPath(rel string) string {
	full := filepath.ToSlash(filepath.Join(e.runDir, filepath.FromSlash(rel)))
	if len(full) > messages.MaxSamplePathLength {
		return rel
	}
	return full
}

func (e *Evaluator) writeIndex() error {
	page := IndexPage{Run: e.run, L1Baseline: e.set.L1Baseline, SWDBaseline: e.set.SWDBaseline}
	for _, line := range e.history {
		page.Entries = append(page.Entries, line.indexEntry())
	}
	return WriteIndex(e.runDir, page)
}

func (e *Evaluator) setFigureGauges(step int64, f Figures) {
	m := e.metrics
	m.checkpointStep.Set(float64(step))
	if len(e.set.Pairs) > 0 {
		m.l1.WithLabelValues(e.run, DirectionAtoB).Set(f.L1AB)
		m.l1.WithLabelValues(e.run, DirectionBtoA).Set(f.L1BA)
	}
	m.cycleL1.WithLabelValues(e.run, DirectionAtoB).Set(f.CycleL1AB)
	m.cycleL1.WithLabelValues(e.run, DirectionBtoA).Set(f.CycleL1BA)
	m.swd.WithLabelValues(e.run, DirectionAtoB).Set(f.SWDAB)
	m.swd.WithLabelValues(e.run, DirectionBtoA).Set(f.SWDBA)
}

// stopWhenRunEnds watches the run state. Once it is finished or failed, it waits until
// the consumer has no announcement left to deliver or to ack and none is being
// evaluated, then calls stop. The trainer publishes its last announcement before it
// writes the final state, so that announcement is already counted as pending here.
func (e *Evaluator) stopWhenRunEnds(ctx context.Context, stop context.CancelFunc) error {
	state, err := e.waitFinal(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	e.log.Info("run ended, evaluating the checkpoints still announced", "status", state.Status, "last_step", state.Step)

	ticker := time.NewTicker(finishPoll)
	defer ticker.Stop()
	for {
		done, err := e.caughtUp(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Debug("read consumer info failed", "err", err)
		}
		if done {
			e.log.Info("every announced checkpoint handled, stopping", "status", state.Status)
			stop()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// waitFinal returns the first final run state, watching again when a watch stops early.
func (e *Evaluator) waitFinal(ctx context.Context) (pipeline.RunState, error) {
	store, err := pipeline.NewRunStore(e.deps.Topology.Runs, e.run, e.deps.Now, e.deps.Logger)
	if err != nil {
		return pipeline.RunState{}, err
	}
	for {
		state, err := store.WaitFinal(ctx)
		if err == nil || ctx.Err() != nil {
			return state, err
		}
		e.log.Warn("watching the run state failed, watching again", "err", err)
		select {
		case <-ctx.Done():
			return pipeline.RunState{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (e *Evaluator) caughtUp(ctx context.Context) (bool, error) {
	if e.busy.Load() {
		return false, nil
	}
	cons, err := e.deps.JetStream.Consumer(ctx, e.deps.Topology.CheckpointStream, pipeline.ConsumerEvaluator)
	if err != nil {
		return false, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return false, err
	}
	return info.NumPending == 0 && info.NumAckPending == 0 && !e.busy.Load(), nil
}
