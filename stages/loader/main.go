// Command loader is the loader stage of the CycleGAN pipeline. It reads the train
// images of a dataset (trainA and trainB), resizes them to the load size, draws unaligned
// pairs and publishes them to the run's raw stream on NATS JetStream, waiting while the
// stream is full. It stops when the run state is finished or failed, or on SIGINT or
// SIGTERM, and serves /metrics, /healthz and /readyz meanwhile.
//
// Usage:
//
//	loader [flags]       run the stage; --help lists the flags and their CYCLEGAN_* variables
//	loader probe [URL]   exit 0 when URL (default: /readyz on --metrics-addr) returns 2xx
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/loader"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes the command and returns the exit status: 0 after a normal stop or a
// signal, 2 for invalid flags, environment variables or arguments, 1 for a failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return pipeline.StageMain(ctx, pipeline.Program{
		Name:        "loader",
		Summary:     "loader publishes unaligned pairs of a dataset's train images to the run's raw stream.",
		MetricsAddr: "127.0.0.1:9101",
		Preset: &pipeline.PresetFlag{
			Names: model.PresetNames(),
			Usage: "model preset that sets the default of --load-size: " + strings.Join(model.PresetNames(), " or "),
		},
		Declare: declare,
	}, args, stdout, stderr, lookupEnv)
}

// declare declares the loader's settings, with the load size of the named model preset
// as the default of --load-size.
func declare(f *pipeline.FlagSet, preset string) (pipeline.BuildFunc, error) {
	p, err := model.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("--preset %q: %w", preset, err)
	}
	cfg := loader.DefaultConfig()
	cfg.LoadSize = p.LoadSize
	cfg.Register(f)
	return func(d pipeline.StageDeps) (pipeline.Stage, error) {
		return loader.New(cfg, loader.Deps{JetStream: d.JetStream, Topology: d.Topology, Registerer: d.Registerer, Metrics: d.Metrics, Logger: d.Logger})
	}, nil
}
