package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/augmenter"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
	"github.com/gocyclegan/cyclegan/pipeline/evaluator"
	"github.com/gocyclegan/cyclegan/pipeline/loader"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

const trainUsage = `Trains a CycleGAN with every stage in this process: an embedded NATS server (JetStream
data under <output>/nats), the loader, --augmenters augmenters, the trainer and the
evaluator, on the bundled emoji dataset unless --dataset names a folder with trainA/,
trainB/, testA/ and testB/. Files of the run go to <output>/<run>/: latest.safetensors,
samples/step-<n>.png, index.html, metrics.jsonl and, on a terminal, train.log.
All stages share one /metrics, /healthz and /readyz server on --metrics-addr.

Without --steps the run follows the whole schedule (--epochs + --epochs-decay epochs),
which takes days on a CPU. Ctrl-C finishes the current step, writes a checkpoint and stops;
running the same command again resumes the run, and --fresh starts it over.

`

// trainSettings are the settings of the one-process run: every stage's, with the ones that
// several stages share registered once.
type trainSettings struct {
	common       pipeline.CommonConfig
	embedded     bool
	augmenters   int
	loader       loader.Config
	augmenter    augmenter.Config
	trainer      trainer.Config
	evaluator    evaluator.Config
	loadSizeFlag int
	// startStep is the step the run had reached before this command, 0 for a new run.
	startStep int64
}

func parseTrainSettings(args []string, stdout io.Writer) (*trainSettings, error) {
	s := &trainSettings{
		common:     pipeline.DefaultCommonConfig(),
		embedded:   true,
		augmenters: 1,
		loader:     loader.DefaultConfig(),
		augmenter:  augmenter.DefaultConfig(),
		trainer:    trainer.DefaultConfig(),
		evaluator:  evaluator.DefaultConfig(),
	}
	s.common.Run = datasets.DefaultName
	s.common.MetricsAddr = "127.0.0.1:9100"

	fset := pipeline.NewFlagSet("cyclegan train", nil)
	s.common.Register(fset)
	fset.Bool(&s.embedded, "embedded-nats", "start an embedded NATS server; --embedded-nats=false connects to --nats-url instead")
	fset.Int(&s.augmenters, "augmenters", "goroutines", "augmenter stages to run", pipeline.AtLeast(1))
	// The trainer declares the model, schedule, seed, batch, output and fresh settings; the
	// other stages take theirs from it after parsing.
	s.trainer.RegisterInProcess(fset)
	fset.String(&s.loader.Dataset, "dataset", "folder with trainA/, trainB/, testA/ and testB/; empty uses the bundled emoji dataset", nil)
	fset.Int(&s.loadSizeFlag, "load-size", "pixels", "side the loader resizes images to before the random crop; 0 uses the preset's", pipeline.AtLeast(0))
	fset.Int(&s.loader.MaxPixels, "max-pixels", "pixels", "largest declared width×height of an input image; larger files are skipped", pipeline.AtLeast(1))
	fset.Bytes(&s.loader.CacheBytes, "cache-bytes", "budget of the loader's decoded-image cache; 0 turns it off", nil)
	fset.Bool(&s.augmenter.NoFlip, "no-flip", "turn off the random left-right mirroring of training images")
	s.evaluator.RegisterOwn(fset)
	if err := parseFlags(fset, args, stdout, trainUsage); err != nil {
		return nil, err
	}
	if len(fset.Args()) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q; %w", fset.Args(), errUsage)
	}
	return s, s.resolve()
}

var runIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// resolve fills the settings that follow from others: the sizes from the preset, the
// shared seed, batch size, dataset and output, and a run id named after a user's dataset.
func (s *trainSettings) resolve() error {
	preset, err := model.Preset(s.trainer.Preset)
	if err != nil {
		return fmt.Errorf("--preset: %w; %w", err, errUsage)
	}
	crop := s.trainer.CropSize
	if crop == 0 {
		crop = preset.CropSize
	}
	load := s.loadSizeFlag
	if load == 0 {
		// Keep the preset's margin between load and crop size (72 for 64, 286 for 256).
		load = crop * preset.LoadSize / preset.CropSize
	}
	if load < crop {
		return fmt.Errorf("--load-size %d is smaller than the crop size %d; %w", load, crop, errUsage)
	}
	s.loader.LoadSize = load
	s.augmenter.CropSize = crop
	s.loader.Seed, s.augmenter.Seed = s.trainer.Seed, s.trainer.Seed
	s.loader.BatchSize = s.trainer.BatchSize
	s.evaluator.Dataset = s.loader.Dataset
	s.evaluator.Output = s.trainer.Output
	s.trainer.DrainTimeout, s.evaluator.DrainTimeout = s.common.DrainTimeout, s.common.DrainTimeout

	if s.loader.Dataset != "" && s.common.Run == datasets.DefaultName {
		name := runIDUnsafe.ReplaceAllString(filepath.Base(filepath.Clean(s.loader.Dataset)), "_")
		if len(name) > messages.MaxRunIDLength {
			name = name[:messages.MaxRunIDLength]
		}
		if pipeline.ValidateRunID(name) == nil {
			s.common.Run = name
		}
	}
	return nil
}

// openDataset returns the dataset file system and the number of pairs in one epoch.
func (s *trainSettings) openDataset(ctx context.Context) (fs.FS, int, error) {
	var fsys fs.FS
	if s.loader.Dataset == "" {
		bundled, err := datasets.Bundled()
		if err != nil {
			return nil, 0, err
		}
		fsys = bundled
	} else {
		info, err := os.Stat(s.loader.Dataset)
		if err != nil {
			return nil, 0, fmt.Errorf("--dataset: %w", err)
		}
		if !info.IsDir() {
			return nil, 0, fmt.Errorf("--dataset %s is not a directory; give the directory that contains trainA/ and trainB/", s.loader.Dataset)
		}
		fsys = os.DirFS(s.loader.Dataset)
	}
	where := "the bundled dataset"
	if s.loader.Dataset != "" {
		where = "dataset " + s.loader.Dataset
	}
	limits := dataset.Limits{MaxPixels: int64(s.loader.MaxPixels)}
	sizes := [2]int{}
	for i, dir := range []string{dataset.DefaultDirA, dataset.DefaultDirB} {
		domain, _, err := dataset.ScanDomain(ctx, fsys, dir, limits)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", where, err)
		}
		sizes[i] = domain.Len()
	}
	// The evaluator reads the test folders; checking them here fails before any training.
	for _, dir := range []string{"testA", "testB"} {
		if _, _, err := dataset.ScanDomain(ctx, fsys, dir, limits); err != nil {
			return nil, 0, fmt.Errorf("%s: the evaluator needs %s/ with test images: %w", where, dir, err)
		}
	}
	return fsys, max(sizes[0], sizes[1]), nil
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseTrainSettings(args, stdout)
	if err != nil {
		return err
	}
	ctx, stop := pipeline.SignalContext(ctx)
	defer stop()

	runDir := filepath.Join(s.trainer.Output, s.common.Run)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("create run folder: %w", err)
	}
	display := newProgressDisplay(stdout)
	logOut := stderr
	if display.terminal {
		logFile, err := os.OpenFile(filepath.Join(runDir, "train.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer logFile.Close()
		logOut = logFile
		fmt.Fprintf(stdout, "run %s: logs in %s, samples in %s\n", s.common.Run, logFile.Name(), filepath.Join(runDir, "index.html"))
	}
	log := pipeline.NewLogger(logOut, s.common.LogLevel)
	if display.terminal {
		// Warnings and errors also appear on the terminal, above the status line.
		onTerminal := slog.NewTextHandler(display, &slog.HandlerOptions{Level: max(slog.LevelWarn, s.common.LogLevel)})
		log = slog.New(slog.NewMultiHandler(log.Handler(), onTerminal))
	}

	fsys, datasetSize, err := s.openDataset(ctx)
	if err != nil {
		return err
	}
	s.trainer.DatasetSize = datasetSize
	s.trainer.OnStep = display.onStep
	s.evaluator.OnReport = display.report
	log.Info("starting", "command", "cyclegan train", "run", s.common.Run, "dataset_size", datasetSize)

	if s.embedded {
		server, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{
			StoreDir: filepath.Join(s.trainer.Output, "nats"),
			// The server's start-up banner would bury the stages' own records.
			Logger: pipeline.NewLogger(logOut, max(slog.LevelWarn, s.common.LogLevel)),
		})
		if err != nil {
			return fmt.Errorf("start embedded NATS server: %w", err)
		}
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := server.Shutdown(shutdownCtx); err != nil {
				log.Warn("embedded NATS server shutdown failed", "err", err)
			}
		}()
		s.common.NATSURLs = []string{server.ClientURL()}
	}

	err = trainAll(ctx, s, fsys, log)
	display.finish()
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		return err
	}
	index := filepath.Join(runDir, "index.html")
	// A run that trained no step this time reports the step it had already reached.
	step := max(display.lastStep(), s.startStep)
	if ctx.Err() != nil {
		fmt.Fprintf(stdout, "run %s interrupted at step %d and checkpointed; run the same command again to resume. Samples and figures: %s\n",
			s.common.Run, step, index)
	} else {
		fmt.Fprintf(stdout, "run %s finished at step %d. Samples and figures: %s\n", s.common.Run, step, index)
	}
	return nil
}

// trainAll connects to NATS, ensures the run's topology and runs every stage until the run
// ends or ctx ends, serving the shared metrics and health endpoints meanwhile.
func trainAll(ctx context.Context, s *trainSettings, fsys fs.FS, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	var ready pipeline.Readiness
	ready.Require("topology")
	httpServer, err := pipeline.StartHTTP(pipeline.HTTPOptions{
		Addr:     s.common.MetricsAddr,
		Registry: reg,
		Ready:    ready.Check,
		Logger:   log,
	})
	if err != nil {
		return fmt.Errorf("%w (pick another address with --metrics-addr, for example 127.0.0.1:0 for any free port)", err)
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := httpServer.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP server shutdown failed", "err", err)
		}
	}()

	nc, err := pipeline.Connect(ctx, s.common.Conn("cyclegan-train", log))
	if err != nil {
		return err
	}
	defer func() {
		if err := pipeline.CloseConn(nc, s.common.DrainTimeout); err != nil {
			log.Warn("closing the NATS connection failed", "err", err)
		}
	}()
	ready.AddConn(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream context: %w", err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, s.common.Topology(), log)
	if err != nil {
		return err
	}
	metrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		return err
	}
	if s.trainer.Fresh {
		// Reset before any stage starts, so that the evaluator does not read the old history.
		if err := trainer.Reset(ctx, topo, s.trainer.Output, log); err != nil {
			return err
		}
		// The loader resumes after the newest pair still queued, so the queued pairs go too:
		// a fresh run with the same seed then draws the same pairs as a new run.
		for _, name := range []string{topo.RawStream, topo.TrainStream} {
			stream, err := js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("open stream %s: %w", name, err)
			}
			if err := stream.Purge(ctx); err != nil {
				return fmt.Errorf("purge stream %s: %w", name, err)
			}
		}
		s.trainer.Fresh = false
	}

	// The loader and augmenters return at once for a run marked finished. So a continued run
	// (with a larger --steps, say) is marked running before they start, and the trainer marks
	// it finished again when there is nothing left to train.
	runs, err := pipeline.NewRunStore(topo.Runs, s.common.Run, time.Now, log)
	if err != nil {
		return err
	}
	if _, err := runs.Modify(ctx, func(state *pipeline.RunState, found bool) error {
		if found {
			s.startStep = int64(state.Step)
		}
		if found && state.Status != pipeline.StatusRunning {
			log.Info("continuing run", "previous_status", state.Status, "step", state.Step)
			state.Status, state.Error = pipeline.StatusRunning, ""
		}
		if steps := uint64(s.trainer.Steps); found && steps > 0 && state.Step >= steps {
			log.Warn("nothing to train: the run is already at or past --steps. Give a larger --steps to continue, or --fresh to start over",
				"step", state.Step, "steps", steps)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("mark run %s running: %w", s.common.Run, err)
	}

	type runner interface{ Run(context.Context) error }
	stages := map[string]runner{}
	ld, err := loader.New(s.loader, loader.Deps{Topology: topo, JetStream: js, Registerer: reg, Metrics: metrics, Logger: log, Dataset: fsys})
	if err != nil {
		return err
	}
	stages["loader"] = ld
	for i := range s.augmenters {
		aug, err := augmenter.New(s.augmenter, augmenter.Deps{Topology: topo, JetStream: js, Registerer: reg, Metrics: metrics, Logger: log.With("augmenter", i), DrainTimeout: s.common.DrainTimeout})
		if err != nil {
			return err
		}
		stages[fmt.Sprintf("augmenter-%d", i)] = aug
	}
	tr, err := trainer.New(s.trainer, trainer.Deps{Topology: topo, JetStream: js, Registerer: reg, Metrics: metrics, Logger: log})
	if err != nil {
		return err
	}
	stages["trainer"] = tr
	ev, err := evaluator.New(s.evaluator, evaluator.Deps{Topology: topo, JetStream: js, Registerer: reg, Metrics: metrics, Logger: log, Dataset: fsys})
	if err != nil {
		return err
	}
	stages["evaluator"] = ev
	ready.Done("topology")

	group, _ := pipeline.NewGroup(ctx)
	for name, stage := range stages {
		group.Go(name, stage.Run)
	}
	return group.Wait()
}
