package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/augmenter"
	"github.com/gocyclegan/cyclegan/pipeline/evaluator"
	"github.com/gocyclegan/cyclegan/pipeline/loader"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

// runSettings are the settings of the training run under test.
type runSettings struct {
	run             string
	natsURL         string
	output          string // folder of the run's files
	steps           int    // the trainer stops at this step
	checkpointEvery int    // steps between checkpoints, each evaluated once
	log             *slog.Logger
	// onStep and onReport are called from the trainer's and the evaluator's goroutine.
	onStep   func(trainer.Progress)
	onReport func(messages.EvalReport)
}

// Sizes of a tiny model, which trains about 7 steps per second on 2 busy CPU cores.
const (
	cropSize = 32
	loadSize = 36 // the cpu preset's margin of 8 pixels on 64, scaled to 32
	channels = 4  // ngf and ndf
	blocks   = 1
	seed     = 7
)

// stageDeps are what one service shares between its stage and its HTTP server.
type stageDeps struct {
	topo    *pipeline.Topology
	js      jetstream.JetStream
	reg     *prometheus.Registry
	metrics *pipeline.Metrics
	log     *slog.Logger
}

// service is one stage set up as a compose service is: its own NATS connection, Prometheus
// registry and HTTP server for /metrics, /healthz and /readyz.
type service struct {
	name string // the stage name, such as "augmenter-1"
	job  string // the scrape job of monitoring/prometheus.yml that scrapes it
	http *pipeline.HTTPServer
	run  func(context.Context) error
}

// metricsURL returns the URL of the service's /metrics.
func (s *service) metricsURL() string { return "http://" + s.http.Addr() + "/metrics" }

// newServices connects and builds the loader, two augmenters, the trainer and the evaluator of
// one run, each as a service listening on 127.0.0.1 at a free port. None of them runs yet.
func newServices(t *testing.T, ctx context.Context, s runSettings) []*service {
	t.Helper()
	common := pipeline.DefaultCommonConfig()
	common.NATSURLs = []string{s.natsURL}
	common.Run = s.run
	common.MetricsAddr = "127.0.0.1:0"
	common.DrainTimeout = 10 * time.Second

	loaderCfg := loader.DefaultConfig()
	loaderCfg.LoadSize = loadSize
	loaderCfg.Seed = seed

	augmenterCfg := augmenter.DefaultConfig()
	augmenterCfg.CropSize = cropSize
	augmenterCfg.Seed = seed

	trainerCfg := trainer.DefaultConfig()
	trainerCfg.CropSize = cropSize
	trainerCfg.NGF, trainerCfg.NDF, trainerCfg.Blocks = channels, channels, blocks
	trainerCfg.Seed = seed
	trainerCfg.Steps = s.steps
	trainerCfg.CheckpointEvery = s.checkpointEvery
	trainerCfg.LogEvery = 10
	trainerCfg.Output = s.output
	trainerCfg.DrainTimeout = common.DrainTimeout
	trainerCfg.OnStep = s.onStep
	loaderCfg.BatchSize = trainerCfg.BatchSize

	evaluatorCfg := evaluator.DefaultConfig()
	evaluatorCfg.Output = s.output
	evaluatorCfg.Samples = 2
	evaluatorCfg.DrainTimeout = common.DrainTimeout
	evaluatorCfg.OnReport = s.onReport

	type runner interface{ Run(context.Context) error }
	builds := []struct {
		name, job string
		build     func(stageDeps) (runner, error)
	}{
		{"loader", "loader", func(d stageDeps) (runner, error) {
			return loader.New(loaderCfg, loader.Deps{Topology: d.topo, JetStream: d.js, Registerer: d.reg, Metrics: d.metrics, Logger: d.log})
		}},
		{"augmenter-0", "augmenter", func(d stageDeps) (runner, error) {
			return augmenter.New(augmenterCfg, augmenter.Deps{Topology: d.topo, JetStream: d.js, Registerer: d.reg, Metrics: d.metrics, Logger: d.log, DrainTimeout: common.DrainTimeout})
		}},
		{"augmenter-1", "augmenter", func(d stageDeps) (runner, error) {
			return augmenter.New(augmenterCfg, augmenter.Deps{Topology: d.topo, JetStream: d.js, Registerer: d.reg, Metrics: d.metrics, Logger: d.log, DrainTimeout: common.DrainTimeout})
		}},
		{"trainer", "trainer", func(d stageDeps) (runner, error) {
			return trainer.New(trainerCfg, trainer.Deps{Topology: d.topo, JetStream: d.js, Registerer: d.reg, Metrics: d.metrics, Logger: d.log})
		}},
		{"evaluator", "evaluator", func(d stageDeps) (runner, error) {
			return evaluator.New(evaluatorCfg, evaluator.Deps{Topology: d.topo, JetStream: d.js, Registerer: d.reg, Metrics: d.metrics, Logger: d.log})
		}},
	}

	services := make([]*service, 0, len(builds))
	for _, b := range builds {
		svc := newService(t, ctx, b.name, b.job, common, s.log, func(d stageDeps) (func(context.Context) error, error) {
			stage, err := b.build(d)
			if err != nil {
				return nil, err
			}
			return stage.Run, nil
		})
		services = append(services, svc)
	}
	return services
}

// newService starts the HTTP server of one stage, connects it to NATS, ensures the run's
// topology and builds the stage, as the stage binaries do. The test's cleanup stops the server
// and closes the connection.
func newService(t *testing.T, ctx context.Context, name, job string, common pipeline.CommonConfig, log *slog.Logger,
	build func(stageDeps) (func(context.Context) error, error)) *service {
	t.Helper()
	log = log.With("service", name)
	reg := prometheus.NewRegistry()
	var ready pipeline.Readiness
	ready.Require("topology")
	httpServer, err := pipeline.StartHTTP(pipeline.HTTPOptions{
		Addr:     common.MetricsAddr,
		Registry: reg,
		Ready:    ready.Check,
		Logger:   log,
	})
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	t.Cleanup(func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := httpServer.Shutdown(shutdownCtx); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	})

	nc, err := pipeline.Connect(ctx, common.Conn("e2e-"+name, log))
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := pipeline.CloseConn(nc, common.DrainTimeout); err != nil {
			t.Errorf("service %s: close the NATS connection: %v", name, err)
		}
	})
	ready.AddConn(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("service %s: JetStream context: %v", name, err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, common.Topology(), log)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	metrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	run, err := build(stageDeps{topo: topo, js: js, reg: reg, metrics: metrics, log: log})
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	ready.Done("topology")
	return &service{name: name, job: job, http: httpServer, run: run}
}

// stageResult is how one service's Run ended.
type stageResult struct {
	name string
	err  error
	end  time.Time
}

// stageStopTimeout bounds the wait for the stages to return after the test's cleanup cancels
// them; each finishes its unit of work within the drain timeout.
const stageStopTimeout = 30 * time.Second

// runServices runs every service's stage in its own goroutine and returns a channel that
// receives one result per service. The test's cleanup cancels the stages still running and
// waits for them, so none writes into the test's folders after it ends.
func runServices(t *testing.T, ctx context.Context, services []*service) <-chan stageResult {
	ctx, cancel := context.WithCancel(ctx)
	results := make(chan stageResult, len(services))
	var wg sync.WaitGroup
	for _, svc := range services {
		wg.Go(func() {
			err := svc.run(ctx)
			results <- stageResult{name: svc.name, err: err, end: time.Now()}
		})
	}
	t.Cleanup(func() {
		cancel()
		stopped := make(chan struct{})
		go func() {
			wg.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(stageStopTimeout):
			t.Errorf("stages still running %s after they were cancelled", stageStopTimeout)
		}
	})
	return results
}

// checkReady requests each service's /readyz and fails the test for any that is not ready.
func checkReady(t *testing.T, ctx context.Context, services []*service) {
	t.Helper()
	for _, svc := range services {
		if err := pipeline.Probe(ctx, "http://"+svc.http.Addr()+"/readyz"); err != nil {
			t.Fatalf("service %s is not ready: %v", svc.name, err)
		}
	}
}

// fetchMetrics returns the body of a service's /metrics.
func fetchMetrics(ctx context.Context, svc *service) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.metricsURL(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", svc.metricsURL(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", svc.metricsURL(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d: %s", svc.metricsURL(), resp.StatusCode, body)
	}
	return body, nil
}
