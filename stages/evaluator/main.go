// Command evaluator is the evaluator stage of the CycleGAN pipeline as a program of its
// own. It evaluates every checkpoint the trainer announces on the run's test images,
// writes sample grids, index.html and metrics.jsonl lines under <output>/<run>/, publishes
// an evaluation report per checkpoint and serves /metrics, /healthz and /readyz.
//
// Usage:
//
//	evaluator [flags]       run the stage; --help lists the flags and their CYCLEGAN_* variables
//	evaluator probe [URL]   exit 0 when URL (default: /readyz on --metrics-addr) returns 2xx,
//	                        for container health checks
package main

import (
	"context"
	"io"
	"os"

	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/evaluator"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run returns the exit status: 0 on success, --help or a signal, 1 when the stage fails,
// 2 for invalid flags, environment variables or arguments.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return pipeline.StageMain(ctx, pipeline.Program{
		Name:        "evaluator",
		Summary:     "evaluator evaluates each checkpoint the trainer announces on the test images and writes sample grids and metrics.",
		MetricsAddr: "127.0.0.1:9104",
		Declare:     declare,
	}, args, stdout, stderr, lookupEnv)
}

// declare declares the evaluator's settings.
func declare(f *pipeline.FlagSet, _ string) (pipeline.BuildFunc, error) {
	cfg := evaluator.DefaultConfig()
	cfg.Register(f)
	return func(d pipeline.StageDeps) (pipeline.Stage, error) {
		cfg.DrainTimeout = d.DrainTimeout
		return evaluator.New(cfg, evaluator.Deps{Topology: d.Topology, JetStream: d.JetStream, Registerer: d.Registerer, Metrics: d.Metrics, Logger: d.Logger})
	}, nil
}
