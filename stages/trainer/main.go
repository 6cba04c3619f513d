// Command trainer runs the CycleGAN training stage: it consumes train pairs
// from NATS JetStream, trains the four networks, and stores and announces
// checkpoints. Every flag can also be set by its CYCLEGAN_* environment
// variable; run it with --help for the list.
//
// Usage:
//
//	trainer [flags]
//	trainer probe [url]
//
// The probe form requests url (default http://127.0.0.1:9103/readyz) and
// exits 0 on a 2xx response, for container health checks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

const (
	// defaultMetricsAddr serves /metrics, /healthz and /readyz on the
	// trainer's port. A container sets CYCLEGAN_METRICS_ADDR=:9103 so that
	// Prometheus can reach it.
	defaultMetricsAddr = "127.0.0.1:9103"
	defaultProbeURL    = "http://127.0.0.1:9103/readyz"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes the command and returns its exit status: 0 on success or
// after SIGINT/SIGTERM, 1 when training or a probe failed, 2 for invalid
// settings.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	if len(args) > 0 && args[0] == "probe" {
		return probe(ctx, args[1:], stderr)
	}

	common := pipeline.DefaultCommonConfig()
	common.MetricsAddr = defaultMetricsAddr
	cfg := trainer.DefaultConfig()
	flags := pipeline.NewFlagSet("trainer", lookupEnv)
	common.Register(flags)
	cfg.Register(flags)
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "trainer trains the CycleGAN on the run's train pairs and stores checkpoints.")
		fmt.Fprintln(stdout, "Usage: trainer [flags]   or   trainer probe [url]")
		flags.PrintUsage(stdout)
		return 0
	}
	if err == nil && len(flags.Args()) > 0 {
		err = fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if err != nil {
		fmt.Fprintf(stderr, "trainer: %v\nRun trainer --help for the settings.\n", err)
		return 2
	}
	cfg.DrainTimeout = common.DrainTimeout

	log := pipeline.NewLogger(stderr, common.LogLevel)
	log.Info("starting", "stage", trainer.Stage, "config", flags.LogValue())
	ctx, stop := pipeline.SignalContext(ctx)
	defer stop()
	if err := serve(ctx, common, cfg, log); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			log.Info("stopped before training started")
			return 0
		}
		log.Error("trainer failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// serve starts the HTTP server, connects to NATS, ensures the run's
// topology and trains until the run ends or ctx ends.
func serve(ctx context.Context, common pipeline.CommonConfig, cfg trainer.Config, log *slog.Logger) error {
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
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := httpServer.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP server shutdown failed", "err", err)
		}
	}()

	nc, err := pipeline.Connect(ctx, common.Conn("cyclegan-trainer", log))
	if err != nil {
		return err
	}
	defer func() {
		if err := pipeline.CloseConn(nc, common.DrainTimeout); err != nil {
			log.Warn("closing the NATS connection failed", "err", err)
		}
	}()
	ready.AddConn(nc)

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream context: %w", err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, common.Topology(), log)
	if err != nil {
		return err
	}
	metrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		return err
	}
	tr, err := trainer.New(cfg, trainer.Deps{
		Topology:   topo,
		JetStream:  js,
		Registerer: reg,
		Metrics:    metrics,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	ready.Done("topology")
	return tr.Run(ctx)
}

// probe requests the readiness URL, args[0] or the default.
func probe(ctx context.Context, args []string, stderr io.Writer) int {
	url := defaultProbeURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(stderr, "trainer: usage: trainer probe [url]")
		return 2
	}
	if err := pipeline.Probe(ctx, url); err != nil {
		fmt.Fprintf(stderr, "trainer: %v\n", err)
		return 1
	}
	return 0
}
