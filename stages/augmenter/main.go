// Command augmenter is the augmenter stage of the CycleGAN pipeline. It takes raw pairs
// from the run's raw stream on NATS JetStream, crops each image at a random offset and
// mirrors it at random, and publishes the train pairs for the trainer. Several augmenter
// processes share the raw stream's durable consumer, so each pair is augmented once. It
// stops when the run state is finished or failed, or on SIGINT or SIGTERM after the
// pairs in progress are published and acked, and serves /metrics, /healthz and /readyz
// meanwhile.
//
// Usage:
//
//	augmenter [flags]       run the stage; --help lists the flags and their CYCLEGAN_* variables
//	augmenter probe [URL]   exit 0 when URL (default: /readyz on --metrics-addr) returns 2xx
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/augmenter"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes the command and returns the exit status: 0 after a normal stop or a
// signal, 2 for invalid flags, environment variables or arguments, 1 for a failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return pipeline.StageMain(ctx, pipeline.Program{
		Name:        "augmenter",
		Summary:     "augmenter crops and mirrors the run's raw pairs at random and publishes them as train pairs.",
		MetricsAddr: "127.0.0.1:9102",
		Preset: &pipeline.PresetFlag{
			Names: model.PresetNames(),
			Usage: "model preset that sets the default of --crop-size: " + strings.Join(model.PresetNames(), " or "),
		},
		Declare: declare,
	}, args, stdout, stderr, lookupEnv)
}

// declare declares the augmenter's settings, with the crop size of the named model
// preset as the default of --crop-size.
func declare(f *pipeline.FlagSet, preset string) (pipeline.BuildFunc, error) {
	p, err := model.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("--preset %q: %w", preset, err)
	}
	cfg := augmenter.DefaultConfig()
	cfg.CropSize = p.CropSize
	cfg.Register(f)
	return func(d pipeline.StageDeps) (pipeline.Stage, error) {
		return augmenter.New(cfg, augmenter.Deps{
			JetStream:    d.JetStream,
			Topology:     d.Topology,
			Registerer:   d.Registerer,
			Metrics:      d.Metrics,
			Logger:       d.Logger,
			DrainTimeout: d.DrainTimeout,
		})
	}, nil
}
