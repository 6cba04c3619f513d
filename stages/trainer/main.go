// Command trainer runs the CycleGAN training stage: it consumes train pairs
// from NATS JetStream, trains the four networks, and stores and announces
// checkpoints. Every flag can also be set by its CYCLEGAN_* environment
// variable; run it with --help for the list.
//
// Usage:
//
//	trainer [flags]
//	trainer probe [URL]
//
// The probe form requests URL (default: /readyz on --metrics-addr, which is
// 127.0.0.1:9103 unless CYCLEGAN_METRICS_ADDR sets it) and exits 0 on a 2xx
// response, for container health checks.
package main

import (
	"context"
	"io"
	"os"

	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes the command and returns its exit status: 0 on success or
// after SIGINT/SIGTERM, 1 when training or a probe failed, 2 for invalid
// settings.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return pipeline.StageMain(ctx, pipeline.Program{
		Name:    "trainer",
		Summary: "trainer trains the CycleGAN on the run's train pairs and stores checkpoints.",
		// A container sets CYCLEGAN_METRICS_ADDR=:9103 so that Prometheus
		// can reach it.
		MetricsAddr: "127.0.0.1:9103",
		Declare:     declare,
	}, args, stdout, stderr, lookupEnv)
}

// declare declares the trainer's settings. The trainer's config declares
// --preset itself, because its model settings default to 0 for "the
// preset's".
func declare(f *pipeline.FlagSet, _ string) (pipeline.BuildFunc, error) {
	cfg := trainer.DefaultConfig()
	cfg.Register(f)
	return func(d pipeline.StageDeps) (pipeline.Stage, error) {
		cfg.DrainTimeout = d.DrainTimeout
		return trainer.New(cfg, trainer.Deps{Topology: d.Topology, JetStream: d.JetStream, Registerer: d.Registerer, Metrics: d.Metrics, Logger: d.Logger})
	}, nil
}
