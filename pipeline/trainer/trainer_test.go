package trainer

import (
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/lossplot"
)

func TestTrainerRunsToSteps(t *testing.T) {
	const run = "steps"
	e := startEnv(t, run)
	e.publishPairs(t, "pair", trainPairs(t, run, 6))

	out := t.TempDir()
	cfg := tinyConfig(t, out)
	cfg.Steps = 6
	cfg.CheckpointEvery = 2
	cfg.Retention = pipeline.CheckpointRetention{KeepLast: 2}
	var progress []Progress
	cfg.OnStep = func(p Progress) { progress = append(progress, p) }
	tr, reg, _ := e.newTrainer(t, cfg)

	if err := runTrainer(t, context.Background(), tr); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if n := e.streamMessages(t, e.topo.TrainStream); n != 0 {
		t.Errorf("train stream holds %d messages after training, want 0 (all acked)", n)
	}

	anns := e.announcements(t)
	if got, want := steps(anns), []int64{2, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("announced steps %v, want %v", got, want)
	}
	for _, a := range anns {
		if a.Object != pipeline.CheckpointName(run, uint64(a.Step)) {
			t.Errorf("announcement of step %d names object %s", a.Step, a.Object)
		}
		if want := a.Step * int64(cfg.BatchSize) / int64(cfg.DatasetSize); a.Epoch != want {
			t.Errorf("announcement of step %d has epoch %d, want %d", a.Step, a.Epoch, want)
		}
	}
	// Keeping the last 2 prunes step 2.
	if d := e.objectDigest(t, anns[0].Object); d != "" {
		t.Errorf("%s still stored, want it pruned", anns[0].Object)
	}
	for _, a := range anns[1:] {
		if d := e.objectDigest(t, a.Object); d != a.SHA256 {
			t.Errorf("%s has SHA-256 %q, announced %s", a.Object, d, a.SHA256)
		}
	}

	state := e.runState(t)
	if state.Status != pipeline.StatusFinished {
		t.Errorf("run state status %q, want %q", state.Status, pipeline.StatusFinished)
	}
	if state.Step != 6 || state.Checkpoint != anns[2].Object {
		t.Errorf("run state step %d checkpoint %q, want 6 and %s", state.Step, state.Checkpoint, anns[2].Object)
	}

	if info, err := os.Stat(filepath.Join(out, run, LatestFile)); err != nil {
		t.Fatal(err)
	} else if info.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("%s mode %v, want readable by group and others", LatestFile, info.Mode())
	}
	latest, err := os.ReadFile(filepath.Join(out, run, LatestFile))
	if err != nil {
		t.Fatalf("latest checkpoint file: %v", err)
	}
	if d := sha256Hex(latest); d != anns[2].SHA256 {
		t.Errorf("%s has SHA-256 %s, want the step 6 checkpoint's %s", LatestFile, d, anns[2].SHA256)
	}

	chart, err := os.Open(filepath.Join(out, run, LossPlotFile))
	if err != nil {
		t.Fatalf("loss chart: %v", err)
	}
	defer chart.Close()
	chartImage, err := png.Decode(chart)
	if err != nil {
		t.Fatalf("decode %s: %v", LossPlotFile, err)
	}
	if got := chartImage.Bounds().Size(); got != image.Pt(lossplot.Width, lossplot.Height) {
		t.Errorf("%s is %v, want %dx%d", LossPlotFile, got, lossplot.Width, lossplot.Height)
	}

	mc, err := cfg.ModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	lines := trainLines(t, filepath.Join(out, run, MetricsFile))
	if len(lines) != 6 {
		t.Fatalf("metrics.jsonl has %d lines, want 6 (log-every 1)", len(lines))
	}
	for i, rec := range lines {
		if rec.Kind != "train" || rec.Step != int64(i+1) {
			t.Errorf("line %d: kind %q step %d, want train and %d", i, rec.Kind, rec.Step, i+1)
		}
		if len(rec.Losses) != len(model.LossNames) {
			t.Errorf("line %d has losses %v, want the eight names", i, rec.Losses)
		}
		if want := mc.LearningRateAt(rec.Epoch); rec.LearningRate != want {
			t.Errorf("line %d: lr %v in epoch %d, want %v", i, rec.LearningRate, rec.Epoch, want)
		}
		if rec.Time.IsZero() {
			t.Errorf("line %d has no time", i)
		}
	}

	if len(progress) != 6 {
		t.Fatalf("OnStep called %d times, want 6", len(progress))
	}
	if progress[5].Step != 6 || progress[5].TotalSteps != 6 {
		t.Errorf("last progress %+v, want step 6 of 6", progress[5])
	}
	if progress[5].ImagesPerSecond <= 0 {
		t.Errorf("images per second %v after 6 steps, want positive", progress[5].ImagesPerSecond)
	}

	runLabel := map[string]string{"run": run}
	for name, want := range map[string]float64{
		"cyclegan_train_steps_total":           6,
		"cyclegan_train_images_total":          12,
		"cyclegan_train_checkpoints_total":     3,
		"cyclegan_train_nonfinite_steps_total": 0,
		"cyclegan_train_step_duration_seconds": 6,
		"cyclegan_train_epoch":                 float64((5 * cfg.BatchSize) / cfg.DatasetSize),
	} {
		if got := metricValue(t, reg, name, runLabel); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, "cyclegan_train_loss", map[string]string{"run": run, "name": model.LossCycleA}); got <= 0 {
		t.Errorf("cyclegan_train_loss{name=cycle_A} = %v, want positive", got)
	}
	if got := metricValue(t, reg, "cyclegan_train_wait_seconds_total", runLabel); got <= 0 {
		t.Errorf("cyclegan_train_wait_seconds_total = %v, want positive", got)
	}
}

func TestTrainerResumesAndStartsFresh(t *testing.T) {
	const run = "resume"
	e := startEnv(t, run)
	e.publishPairs(t, "first", trainPairs(t, run, 6))
	out := t.TempDir()

	// First run: canceled after step 3, it stores a checkpoint of step 3.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := tinyConfig(t, out)
	cfg.Steps = 100
	cfg.OnStep = func(p Progress) {
		if p.Step == 3 {
			cancel()
		}
	}
	first, _, _ := e.newTrainer(t, cfg)
	if err := runTrainer(t, ctx, first); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	anns := e.announcements(t)
	if got := steps(anns); !slices.Equal(got, []int64{3}) {
		t.Fatalf("announced steps after cancel %v, want [3]", got)
	}
	state := e.runState(t)
	if state.Status != pipeline.StatusRunning || state.Step != 3 || state.Checkpoint != anns[0].Object {
		t.Fatalf("run state after cancel %+v, want running at step 3 with %s", state, anns[0].Object)
	}
	if d := e.objectDigest(t, anns[0].Object); d != anns[0].SHA256 {
		t.Fatalf("%s has SHA-256 %q, announced %s", anns[0].Object, d, anns[0].SHA256)
	}

	// Second run: resumes at step 3 and goes on to step 5, with the
	// checkpoint's architecture where the settings differ.
	cfg = tinyConfig(t, out)
	cfg.Steps = 5
	cfg.NGF = 16
	var firstStep int64
	cfg.OnStep = func(p Progress) {
		if firstStep == 0 {
			firstStep = p.Step
		}
	}
	second, _, logs := e.newTrainer(t, cfg)
	if err := runTrainer(t, context.Background(), second); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	resumed := logs.records(t, "resumed from checkpoint")
	if len(resumed) != 1 {
		t.Fatalf("%d 'resumed from checkpoint' records, want 1", len(resumed))
	}
	if resumed[0]["step"] != float64(3) || resumed[0]["sha256"] != anns[0].SHA256 {
		t.Errorf("resumed record %v, want step 3 and sha256 %s", resumed[0], anns[0].SHA256)
	}
	warnings := logs.records(t, "checkpoint config differs from the settings, training on with the checkpoint's")
	if len(warnings) != 1 {
		t.Errorf("%d config difference warnings, want 1", len(warnings))
	} else if diffs, _ := warnings[0]["differences"].([]any); !slices.Contains(diffs, any("ngf: checkpoint 8, settings 16")) {
		t.Errorf("config differences %v, want ngf named", warnings[0]["differences"])
	}
	if firstStep != 4 {
		t.Errorf("first step after resuming is %d, want 4", firstStep)
	}
	if got := steps(e.announcements(t)); !slices.Equal(got, []int64{3, 5}) {
		t.Errorf("announced steps after resuming %v, want [3 5]", got)
	}
	if state := e.runState(t); state.Status != pipeline.StatusFinished || state.Step != 5 {
		t.Errorf("run state after resuming %+v, want finished at step 5", state)
	}

	// Third run with Fresh: starts at step 1, and the old checkpoints,
	// announcements and metrics lines are gone.
	e.publishPairs(t, "fresh", trainPairs(t, run, 1))
	cfg = tinyConfig(t, out)
	cfg.Steps = 1
	cfg.Fresh = true
	firstStep = 0
	cfg.OnStep = func(p Progress) {
		if firstStep == 0 {
			firstStep = p.Step
		}
	}
	third, _, logs := e.newTrainer(t, cfg)
	if err := runTrainer(t, context.Background(), third); err != nil {
		t.Fatalf("fresh Run: %v", err)
	}
	if firstStep != 1 {
		t.Errorf("first step of the fresh run is %d, want 1", firstStep)
	}
	if n := len(logs.records(t, "resumed from checkpoint")); n != 0 {
		t.Errorf("fresh run logged %d 'resumed from checkpoint' records, want 0", n)
	}
	if got := steps(e.announcements(t)); !slices.Equal(got, []int64{1}) {
		t.Errorf("announced steps after the fresh run %v, want [1]", got)
	}
	for _, step := range []uint64{3, 5} {
		if d := e.objectDigest(t, pipeline.CheckpointName(run, step)); d != "" {
			t.Errorf("checkpoint of step %d survived the fresh start", step)
		}
	}
	if lines := trainLines(t, filepath.Join(out, run, MetricsFile)); len(lines) != 1 || lines[0].Step != 1 {
		t.Errorf("metrics.jsonl after the fresh run has %d lines, want 1 line of step 1", len(lines))
	}
	if state := e.runState(t); state.Status != pipeline.StatusFinished || state.Step != 1 {
		t.Errorf("run state after the fresh run %+v, want finished at step 1", state)
	}
}

func TestTrainerTerminatesPoisonMessages(t *testing.T) {
	const run = "poison"
	e := startEnv(t, run)

	good := trainPairs(t, run, 2)
	wrongSize := *good[0]
	wrongSize.Height, wrongSize.Width, wrongSize.LoadHeight, wrongSize.LoadWidth = 24, 24, 24, 24
	wrongSize.A, wrongSize.B = good[0].A[:24*24*3], good[0].B[:24*24*3]
	raw := *good[0]
	raw.Kind = messages.KindRaw

	var payloads [][]byte
	payloads = append(payloads, []byte("not a pair"))
	for _, p := range []*messages.Pair{&wrongSize, &raw, good[0], good[1]} {
		data, err := messages.EncodePair(p)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		payloads = append(payloads, data)
	}
	e.publish(t, "msg", payloads...)

	cfg := tinyConfig(t, t.TempDir())
	cfg.Steps = 2
	tr, reg, _ := e.newTrainer(t, cfg)
	if err := runTrainer(t, context.Background(), tr); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got := metricValue(t, reg, "cyclegan_pipeline_messages_terminated_total", map[string]string{"run": run, "stage": Stage}); got != 3 {
		t.Errorf("terminated messages %v, want 3 (garbage, wrong size, raw kind)", got)
	}
	if got := metricValue(t, reg, "cyclegan_train_steps_total", map[string]string{"run": run}); got != 2 {
		t.Errorf("steps %v, want 2", got)
	}
	if n := e.streamMessages(t, e.topo.TrainStream); n != 0 {
		t.Errorf("train stream holds %d messages, want 0", n)
	}
	if state := e.runState(t); state.Status != pipeline.StatusFinished {
		t.Errorf("run state %q, want finished", state.Status)
	}
}

func TestTrainerFailsAfterNonFiniteSteps(t *testing.T) {
	const run = "diverge"
	e := startEnv(t, run)
	e.publishPairs(t, "pair", trainPairs(t, run, model.MaxNonFiniteSteps+4))

	cfg := tinyConfig(t, t.TempDir())
	cfg.Steps = 100
	// A learning rate this large turns the weights huge after the first
	// update, so that every later loss overflows float32.
	cfg.LearningRate = 1e30
	tr, reg, _ := e.newTrainer(t, cfg)

	err := runTrainer(t, context.Background(), tr)
	if !errors.Is(err, model.ErrTooManyNonFinite) {
		t.Fatalf("Run returned %v, want an error wrapping model.ErrTooManyNonFinite", err)
	}
	if got := metricValue(t, reg, "cyclegan_train_nonfinite_steps_total", map[string]string{"run": run}); got != model.MaxNonFiniteSteps {
		t.Errorf("non-finite steps %v, want %d", got, model.MaxNonFiniteSteps)
	}
	state := e.runState(t)
	if state.Status != pipeline.StatusFailed || state.Error == "" {
		t.Errorf("run state %+v, want failed with an error", state)
	}
	if n := len(e.announcements(t)); n != 0 {
		t.Errorf("%d checkpoints announced, want none", n)
	}
	steps := metricValue(t, reg, "cyclegan_train_steps_total", map[string]string{"run": run})
	acked := metricValue(t, reg, "cyclegan_pipeline_messages_acked_total", map[string]string{"run": run, "stage": Stage})
	if acked != steps+model.MaxNonFiniteSteps {
		t.Errorf("acked %v messages, want %v (applied and skipped steps)", acked, steps+model.MaxNonFiniteSteps)
	}
}
