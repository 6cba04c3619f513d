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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/augmenter"
)

const (
	program            = "augmenter"
	defaultMetricsAddr = "127.0.0.1:9102"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command and returns the exit status: 0 after a normal stop, 2 for
// invalid flags, 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "probe" {
		return probe(args[1:], stderr)
	}

	s, err := parseSettings(args)
	if errors.Is(err, flag.ErrHelp) {
		s.flags.PrintUsage(stdout)
		fmt.Fprintf(stdout, "\n%s probe [URL] checks URL (default: /readyz on --metrics-addr) for container health checks.\n", program)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 2
	}

	log := pipeline.NewLogger(stderr, s.common.LogLevel).With("program", program)
	log.Info("starting", "config", s.flags.LogValue())
	ctx, stop := pipeline.SignalContext(context.Background())
	defer stop()
	if err := serve(ctx, s, log); err != nil {
		log.Error("augmenter failed", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", program, err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// settings are the parsed flags and environment variables.
type settings struct {
	common    pipeline.CommonConfig
	augmenter augmenter.Config
	preset    string
	flags     *pipeline.FlagSet
}

// newSettings declares every flag, with defaults taken from the named preset.
func newSettings(preset string) (*settings, error) {
	p, err := model.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("--preset %q: %w", preset, err)
	}
	s := &settings{common: pipeline.DefaultCommonConfig(), augmenter: augmenter.DefaultConfig(), preset: preset}
	s.common.MetricsAddr = defaultMetricsAddr
	s.augmenter.CropSize = p.CropSize
	s.flags = pipeline.NewFlagSet(program, nil)
	s.flags.String(&s.preset, "preset", "model preset that sets the default of --crop-size: "+strings.Join(model.PresetNames(), " or "),
		pipeline.OneOf(model.PresetNames()...))
	s.common.Register(s.flags)
	s.augmenter.Register(s.flags)
	return s, nil
}

// parseSettings parses args and the environment. The preset sets the default of
// --crop-size, so a first pass reads the preset and a second pass, with that default,
// reads everything. The settings are returned with flag.ErrHelp for --help.
func parseSettings(args []string) (*settings, error) {
	first, err := newSettings(model.PresetNames()[0])
	if err != nil {
		return nil, err
	}
	if err := first.flags.Parse(args); err != nil && !errors.Is(err, flag.ErrHelp) {
		return first, err
	}
	s, err := newSettings(first.preset)
	if err != nil {
		return first, err
	}
	if err := s.flags.Parse(args); err != nil {
		return s, err
	}
	if len(s.flags.Args()) > 0 {
		return s, fmt.Errorf("unexpected arguments %q; the augmenter takes only flags, or \"probe [URL]\"", s.flags.Args())
	}
	return s, nil
}

// serve connects to NATS, serves the HTTP endpoints and runs the augmenter until it
// stops.
func serve(ctx context.Context, s *settings, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	var ready pipeline.Readiness
	ready.Require("topology")
	srv, err := pipeline.StartHTTP(pipeline.HTTPOptions{Addr: s.common.MetricsAddr, Registry: reg, Ready: ready.Check, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP server shutdown failed", "err", err)
		}
	}()

	nc, err := pipeline.Connect(ctx, s.common.Conn(program, log))
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal before the connection was made
		}
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
		return fmt.Errorf("create JetStream context: %w", err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, s.common.Topology(), log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ready.Done("topology")

	metrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		return err
	}
	stage, err := augmenter.New(s.augmenter, augmenter.Deps{
		JetStream:    js,
		Topology:     topo,
		Registerer:   reg,
		Metrics:      metrics,
		Logger:       log,
		DrainTimeout: s.common.DrainTimeout,
	})
	if err != nil {
		return err
	}
	return stage.Run(ctx)
}

// probe checks the readiness endpoint of a running augmenter and returns the exit status.
func probe(args []string, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "%s probe: want at most one URL, got %q\n", program, args)
		return 2
	}
	url := ""
	if len(args) == 1 {
		url = args[0]
	} else {
		addr := defaultMetricsAddr
		if v, ok := os.LookupEnv(pipeline.EnvName("metrics-addr")); ok {
			addr = v
		}
		url = readyURL(addr)
	}
	if err := pipeline.Probe(context.Background(), url); err != nil {
		fmt.Fprintf(stderr, "%s probe: %v\n", program, err)
		return 1
	}
	return 0
}

// readyURL returns the /readyz URL of a server listening on addr. A wildcard or empty
// host is reached through 127.0.0.1.
func readyURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
