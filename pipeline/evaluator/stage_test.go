package evaluator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/png"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/lossplot"
)

const testRun = "evaltest"

// waitTimeout bounds every wait for the evaluator in these tests. An evaluation of the
// tiny model on the test set takes well under a second.
const waitTimeout = 60 * time.Second

// stageEnv is an embedded NATS server with the topology of testRun, a test dataset and
// an output folder.
type stageEnv struct {
	js     jetstream.JetStream
	topo   *pipeline.Topology
	log    *slog.Logger
	data   testDataset
	output string

	mu      sync.Mutex
	msgSeq  int
	objects map[int64][]byte
}

func newStageEnv(t *testing.T) *stageEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := pipeline.StartEmbedded(t.Context(), pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut down NATS: %v", err)
		}
	})
	nc, err := pipeline.Connect(t.Context(), pipeline.ConnOptions{URLs: []string{srv.ClientURL()}, Logger: log})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := pipeline.EnsureTopology(t.Context(), js, pipeline.TopologyConfig{Run: testRun}, log)
	if err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	return &stageEnv{js: js, topo: topo, log: log, data: makeTestDataset(t), output: t.TempDir(), objects: map[int64][]byte{}}
}

// runningEvaluator is an evaluator whose Run goes on in a goroutine.
type runningEvaluator struct {
	e       *Evaluator
	reg     *prometheus.Registry
	reports chan messages.EvalReport
	cancel  context.CancelFunc
	done    chan error
}

func (env *stageEnv) start(t *testing.T) *runningEvaluator {
	t.Helper()
	r := &runningEvaluator{
		reg:     prometheus.NewRegistry(),
		reports: make(chan messages.EvalReport, 32),
		done:    make(chan error, 1),
	}
	cfg := DefaultConfig()
	cfg.Dataset = env.data.dir
	cfg.Output = env.output
	cfg.Samples = 2
	cfg.DrainTimeout = 10 * time.Second
	cfg.OnReport = func(rep messages.EvalReport) { r.reports <- rep }
	e, err := New(cfg, Deps{Topology: env.topo, Registerer: r.reg, Logger: env.log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.e = e
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Error("evaluator did not stop after its context ended")
		}
	})
	return r
}

// stop ends the evaluator's context and returns Run's error.
func (r *runningEvaluator) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns Run's error once it returned.
func (r *runningEvaluator) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitTimeout):
		t.Fatal("evaluator did not return")
		return nil
	}
}

// waitReport returns the next report passed to OnReport.
func (r *runningEvaluator) waitReport(t *testing.T) messages.EvalReport {
	t.Helper()
	select {
	case rep := <-r.reports:
		return rep
	case <-time.After(waitTimeout):
		t.Fatal("no evaluation report")
		return messages.EvalReport{}
	}
}

// put stores the checkpoint of a fresh tiny model as the object of step.
func (env *stageEnv) put(t *testing.T, step int64) []byte {
	t.Helper()
	data := checkpointBytes(t, uint64(step))
	if _, err := env.topo.Checkpoints.PutBytes(t.Context(), pipeline.CheckpointName(testRun, uint64(step)), data); err != nil {
		t.Fatalf("put checkpoint: %v", err)
	}
	env.mu.Lock()
	env.objects[step] = data
	env.mu.Unlock()
	return data
}

// announce publishes the announcement of the object of step (put before, or missing),
// changed by edit if not nil, under a message id not used before.
func (env *stageEnv) announce(t *testing.T, step int64, edit func(*messages.Checkpoint)) {
	t.Helper()
	env.mu.Lock()
	data := env.objects[step]
	env.msgSeq++
	msgID := fmt.Sprintf("announcement-%d", env.msgSeq)
	env.mu.Unlock()

	sum := sha256.Sum256(data)
	ann := messages.Checkpoint{
		Run: testRun, Step: step, Epoch: step / 10,
		Object: messages.CheckpointObjectName(testRun, step),
		Size:   int64(max(len(data), 1)), SHA256: hex.EncodeToString(sum[:]),
		Created: time.Now().UTC(),
	}
	if edit != nil {
		edit(&ann)
	}
	payload, err := messages.EncodeCheckpoint(&ann)
	if err != nil {
		t.Fatalf("EncodeCheckpoint: %v", err)
	}
	env.publish(t, payload, msgID)
}

func (env *stageEnv) publish(t *testing.T, payload []byte, msgID string) {
	t.Helper()
	if _, err := env.js.Publish(t.Context(), env.topo.CheckpointSubject, payload, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publish announcement: %v", err)
	}
}

func (env *stageEnv) setRunStatus(t *testing.T, status pipeline.RunStatus, step int64) {
	t.Helper()
	store, err := pipeline.NewRunStore(env.topo.Runs, testRun, nil, env.log)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Modify(t.Context(), func(s *pipeline.RunState, _ bool) error {
		s.Status = status
		s.Step = uint64(step)
		s.Checkpoint = pipeline.CheckpointName(testRun, uint64(step))
		return nil
	})
	if err != nil {
		t.Fatalf("write run state: %v", err)
	}
}

func (env *stageEnv) runDir() string { return filepath.Join(env.output, testRun) }

// evalSteps returns the steps of the eval lines in metrics.jsonl.
func (env *stageEnv) evalSteps(t *testing.T) []int64 {
	t.Helper()
	lines, invalid, err := ReadEvalLines(filepath.Join(env.runDir(), MetricsFile))
	if err != nil || invalid != 0 {
		t.Fatalf("ReadEvalLines: %d invalid lines, %v", invalid, err)
	}
	var steps []int64
	for _, l := range lines {
		steps = append(steps, l.Step)
	}
	return steps
}

// metricValue returns the value of the series name{labels} in reg: a gauge's or
// counter's value, or a histogram's sample count. ok is false when it does not exist.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (value float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func runLabels(extra ...string) map[string]string {
	labels := map[string]string{"run": testRun}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	return labels
}

func TestEvaluatorEvaluatesAnnouncedCheckpoint(t *testing.T) {
	env := newStageEnv(t)
	ev := env.start(t)
	for _, reason := range FailureReasons() {
		if v, ok := metricValue(t, ev.reg, "cyclegan_eval_failures_total", runLabels("reason", reason)); !ok || v != 0 {
			t.Errorf("failures{reason=%s} = %v (exists %v), want 0 at start", reason, v, ok)
		}
	}

	const step = 10
	env.put(t, step)
	env.announce(t, step, nil)
	report := ev.waitReport(t)
	if report.Step != step || report.Run != testRun {
		t.Fatalf("report of run %s step %d, want %s step %d", report.Run, report.Step, testRun, step)
	}

	// The report on the eval stream decodes and equals the one passed to OnReport.
	stream, err := env.js.Stream(t.Context(), env.topo.EvalStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), env.topo.EvalSubject)
	if err != nil {
		t.Fatalf("read eval stream: %v", err)
	}
	published, err := messages.DecodeEvalReport(raw.Data)
	if err != nil {
		t.Fatalf("DecodeEvalReport: %v", err)
	}
	if published.Step != step || len(published.Metrics) != len(report.Metrics) {
		t.Errorf("published report %+v, OnReport got %+v", published, report)
	}

	// Every figure is present and finite, and the baselines are those of the images.
	for _, name := range messages.MetricNames() {
		v, ok := published.Metrics[name]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("metric %s = %v (present %v), want a finite value", name, v, ok)
		}
		if report.Metrics[name] != v {
			t.Errorf("metric %s: OnReport %v, stream %v", name, report.Metrics[name], v)
		}
	}
	wantL1, wantSWD := env.data.baselines(t)
	if got := published.Metrics[messages.MetricL1Baseline]; got != wantL1 {
		t.Errorf("l1_baseline = %v, want %v", got, wantL1)
	}
	if got := published.Metrics[messages.MetricSWDBaseline]; got != wantSWD {
		t.Errorf("swd_baseline = %v, want %v", got, wantSWD)
	}

	// Files: the sample grid, metrics.jsonl and index.html.
	samplePath := filepath.Join(env.runDir(), "samples", "step-10.png")
	if len(published.Samples) != 1 || published.Samples[0] != filepath.ToSlash(samplePath) {
		t.Errorf("report samples %q, want [%q]", published.Samples, filepath.ToSlash(samplePath))
	}
	f, err := os.Open(samplePath)
	if err != nil {
		t.Fatalf("sample grid: %v", err)
	}
	grid, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("decode sample grid: %v", err)
	}
	// Two rows of cells as large as the largest image (32 px).
	if h := grid.Bounds().Dy(); h != GridMargin+2*(32+GridMargin) {
		t.Errorf("sample grid height %d, want %d for 2 rows", h, GridMargin+2*(32+GridMargin))
	}

	lines, _, err := ReadEvalLines(filepath.Join(env.runDir(), MetricsFile))
	if err != nil || len(lines) != 1 {
		t.Fatalf("metrics.jsonl eval lines %+v, %v; want 1", lines, err)
	}
	if lines[0].Step != step || lines[0].Epoch != step/10 || !slices.Equal(lines[0].Samples, []string{"samples/step-10.png"}) {
		t.Errorf("eval line %+v", lines[0])
	}
	for name, v := range report.Metrics {
		if lines[0].Metrics[name] != v {
			t.Errorf("metrics.jsonl %s = %v, report %v", name, lines[0].Metrics[name], v)
		}
	}
	index, err := os.ReadFile(filepath.Join(env.runDir(), IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="step-10"`, `src="samples/step-10.png"`} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	chart, err := os.Open(filepath.Join(env.runDir(), lossplot.FileName))
	if err != nil {
		t.Fatalf("loss chart: %v", err)
	}
	_, err = png.Decode(chart)
	chart.Close()
	if err != nil {
		t.Errorf("decode loss chart: %v", err)
	}

	// Gauges and counters.
	gauges := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"cyclegan_eval_l1", runLabels("direction", "AtoB"), report.Metrics[messages.MetricL1AB]},
		{"cyclegan_eval_l1", runLabels("direction", "BtoA"), report.Metrics[messages.MetricL1BA]},
		{"cyclegan_eval_cycle_l1", runLabels("direction", "AtoB"), report.Metrics[messages.MetricCycleL1AB]},
		{"cyclegan_eval_cycle_l1", runLabels("direction", "BtoA"), report.Metrics[messages.MetricCycleL1BA]},
		{"cyclegan_eval_swd", runLabels("direction", "AtoB"), report.Metrics[messages.MetricSWDAB]},
		{"cyclegan_eval_swd", runLabels("direction", "BtoA"), report.Metrics[messages.MetricSWDBA]},
		{"cyclegan_eval_l1_baseline", runLabels(), wantL1},
		{"cyclegan_eval_swd_baseline", runLabels(), wantSWD},
		{"cyclegan_eval_checkpoint_step", runLabels(), step},
		{"cyclegan_eval_checkpoints_total", runLabels(), 1},
		{"cyclegan_eval_duration_seconds", runLabels(), 1}, // sample count
	}
	for _, g := range gauges {
		if got, ok := metricValue(t, ev.reg, g.name, g.labels); !ok || got != g.want {
			t.Errorf("%s%v = %v (exists %v), want %v", g.name, g.labels, got, ok, g.want)
		}
	}

	if err := ev.stop(t); err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestEvaluatorSkipsBadAndRepeatedAnnouncements(t *testing.T) {
	env := newStageEnv(t)
	first := env.start(t)

	env.put(t, 1)
	env.announce(t, 1, func(c *messages.Checkpoint) { c.SHA256 = strings.Repeat("0", 64) })
	env.put(t, 2)
	env.announce(t, 2, func(c *messages.Checkpoint) { c.Size++ })
	env.announce(t, 3, nil) // never put: pruned before the evaluator read it
	env.publish(t, []byte(`{"version":1,"run":`), "garbage")
	env.put(t, 4)
	env.announce(t, 4, nil)
	env.announce(t, 4, nil) // the same checkpoint announced twice
	env.put(t, 5)
	env.announce(t, 5, nil)

	// Announcements are handled in order, so every one before step 5 is done by then.
	if got := first.waitReport(t).Step; got != 4 {
		t.Errorf("first report of step %d, want 4", got)
	}
	if got := first.waitReport(t).Step; got != 5 {
		t.Errorf("second report of step %d, want 5", got)
	}
	failures := map[string]float64{FailureDigest: 2, FailureMissingObject: 1, FailureAnnouncement: 1, FailureLoad: 0, FailureTranslate: 0}
	for reason, want := range failures {
		if got, _ := metricValue(t, first.reg, "cyclegan_eval_failures_total", runLabels("reason", reason)); got != want {
			t.Errorf("failures{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got, _ := metricValue(t, first.reg, "cyclegan_eval_checkpoints_total", runLabels()); got != 2 {
		t.Errorf("checkpoints evaluated = %v, want 2", got)
	}
	if err := first.stop(t); err != nil {
		t.Errorf("first evaluator: %v", err)
	}
	select {
	case rep := <-first.reports:
		t.Errorf("extra report of step %d", rep.Step)
	default:
	}

	// A restarted evaluator finds steps 4 and 5 in metrics.jsonl and skips them.
	second := env.start(t)
	env.announce(t, 5, nil)
	env.put(t, 6)
	env.announce(t, 6, nil)
	if got := second.waitReport(t).Step; got != 6 {
		t.Errorf("report after restart of step %d, want 6", got)
	}
	if got, _ := metricValue(t, second.reg, "cyclegan_eval_checkpoints_total", runLabels()); got != 1 {
		t.Errorf("checkpoints evaluated after restart = %v, want 1", got)
	}
	if err := second.stop(t); err != nil {
		t.Errorf("second evaluator: %v", err)
	}

	if got := env.evalSteps(t); !slices.Equal(got, []int64{4, 5, 6}) {
		t.Errorf("metrics.jsonl eval steps %v, want [4 5 6]", got)
	}
	index, err := os.ReadFile(filepath.Join(env.runDir(), IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []int{4, 5, 6} {
		if !strings.Contains(string(index), fmt.Sprintf(`id="step-%d"`, step)) {
			t.Errorf("index.html after restart lacks step %d", step)
		}
	}
	info, err := env.js.Stream(t.Context(), env.topo.EvalStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 3 {
		t.Errorf("eval stream holds %d reports, want 3", got)
	}
}

func TestEvaluatorStopsAfterLastCheckpoint(t *testing.T) {
	env := newStageEnv(t)
	env.setRunStatus(t, pipeline.StatusRunning, 0)
	ev := env.start(t)

	env.put(t, 1)
	env.announce(t, 1, nil)
	env.put(t, 2)
	env.announce(t, 2, nil)
	env.setRunStatus(t, pipeline.StatusFinished, 2)

	if err := ev.wait(t); err != nil {
		t.Errorf("Run = %v, want nil after the run finished", err)
	}
	if got := env.evalSteps(t); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("evaluated steps %v, want [1 2]", got)
	}
}

func TestEvaluatorStopsAtStartWhenRunFailed(t *testing.T) {
	env := newStageEnv(t)
	env.setRunStatus(t, pipeline.StatusFailed, 0)
	ev := env.start(t)
	if err := ev.wait(t); err != nil {
		t.Errorf("Run = %v, want nil for a failed run", err)
	}
	if got := env.evalSteps(t); len(got) != 0 {
		t.Errorf("evaluated steps %v, want none", got)
	}
}

func TestEvaluatorFinishesCurrentEvaluationOnCancel(t *testing.T) {
	env := newStageEnv(t)
	ev := env.start(t)
	env.put(t, 1)
	env.announce(t, 1, nil)

	deadline := time.Now().Add(waitTimeout)
	for !ev.e.busy.Load() {
		if time.Now().After(deadline) {
			t.Fatal("evaluation did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if err := ev.stop(t); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if got := env.evalSteps(t); !slices.Equal(got, []int64{1}) {
		t.Errorf("evaluated steps %v, want [1]: the evaluation in progress should finish", got)
	}
	if got := ev.waitReport(t).Step; got != 1 {
		t.Errorf("report of step %d, want 1", got)
	}

	// The announcement was acked, so a new evaluator has nothing to do for it.
	cons, err := env.js.Consumer(t.Context(), env.topo.CheckpointStream, pipeline.ConsumerEvaluator)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Errorf("consumer has %d pending and %d unacked announcements, want none", info.NumPending, info.NumAckPending)
	}
}
