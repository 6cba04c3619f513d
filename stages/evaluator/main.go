// Command evaluator is the evaluator stage of the CycleGAN pipeline as a program of its
// own. It evaluates every checkpoint the trainer announces on the run's test images,
// writes sample grids, index.html and metrics.jsonl lines under <output>/<run>/, publishes
// an evaluation report per checkpoint and serves /metrics, /healthz and /readyz.
//
// Usage:
//
//	evaluator [flags]       run the stage; --help lists the flags and their CYCLEGAN_* variables
//	evaluator probe [url]   exit 0 when url returns 2xx (default http://127.0.0.1:9104/readyz),
//	                        for container health checks
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
	"github.com/gocyclegan/cyclegan/pipeline/evaluator"
)

const (
	program         = "evaluator"
	defaultAddr     = "127.0.0.1:9104"
	defaultProbeURL = "http://127.0.0.1:9104/readyz"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit status: 0 on success or --help, 1 when the stage fails, 2 for
// invalid flags or environment variables.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "probe" {
		return probe(args[1:], stderr)
	}

	common := pipeline.DefaultCommonConfig()
	common.MetricsAddr = defaultAddr
	cfg := evaluator.DefaultConfig()
	flags := pipeline.NewFlagSet(program, nil)
	common.Register(flags)
	cfg.Register(flags)
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			flags.PrintUsage(stdout)
			fmt.Fprintf(stdout, "\nHealth check: %s probe [url] exits 0 when url returns 2xx (default %s).\n", program, defaultProbeURL)
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 2
	}
	if rest := flags.Args(); len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q; the only subcommand is probe\n", program, rest)
		return 2
	}
	cfg.DrainTimeout = common.DrainTimeout

	log := pipeline.NewLogger(stderr, common.LogLevel)
	log.Info("starting", "program", program, "config", flags.LogValue())
	if err := serve(common, cfg, log); err != nil {
		log.Error("evaluator failed", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 1
	}
	return 0
}

func probe(args []string, stderr io.Writer) int {
	url := defaultProbeURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		fmt.Fprintf(stderr, "%s probe: want at most one URL, got %q\n", program, args)
		return 2
	}
	if err := pipeline.Probe(context.Background(), url); err != nil {
		fmt.Fprintf(stderr, "%s probe: %v\n", program, err)
		return 1
	}
	return 0
}

// serve connects, serves the HTTP endpoints and runs the stage until SIGINT, SIGTERM or
// the end of the run.
func serve(common pipeline.CommonConfig, cfg evaluator.Config, log *slog.Logger) error {
	ctx, stop := pipeline.SignalContext(context.Background())
	defer stop()

	registry := prometheus.NewRegistry()
	var ready pipeline.Readiness
	ready.Require("topology")
	httpServer, err := pipeline.StartHTTP(pipeline.HTTPOptions{
		Addr: common.MetricsAddr, Registry: registry, Ready: ready.Check, Logger: log,
	})
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := httpServer.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP server shutdown failed", "err", err)
		}
	}()
	log.Info("serving metrics and health", "addr", httpServer.Addr())

	nc, err := pipeline.Connect(ctx, common.Conn(program, log))
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
		return fmt.Errorf("JetStream: %w", err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, common.Topology(), log)
	if err != nil {
		return err
	}
	ready.Done("topology")

	metrics, err := pipeline.NewMetrics(registry)
	if err != nil {
		return err
	}
	stage, err := evaluator.New(cfg, evaluator.Deps{
		Topology: topo, JetStream: js, Registerer: registry, Metrics: metrics, Logger: log,
	})
	if err != nil {
		return err
	}
	return stage.Run(ctx)
}
