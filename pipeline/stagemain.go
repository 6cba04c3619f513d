package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Program describes a stage binary for StageMain.
type Program struct {
	// Name is the command name. It prefixes every error message, is the
	// "program" attribute of every log record and names the NATS client
	// cyclegan-<Name>.
	Name string
	// Summary is the sentence that --help prints first.
	Summary string
	// MetricsAddr is the default of --metrics-addr.
	MetricsAddr string
	// Preset, when not nil, declares --preset before the other settings.
	Preset *PresetFlag
	// Declare declares the stage's own settings on f, after the common ones,
	// with the defaults of preset, and returns the function that builds the
	// stage from their parsed values. preset is one of Preset.Names, or ""
	// without Preset. An error counts as an invalid setting. StageMain may
	// call Declare more than once, each time on a new FlagSet.
	Declare func(f *FlagSet, preset string) (BuildFunc, error)
}

// PresetFlag describes a --preset setting whose value selects the defaults
// of other settings. A default must be known when its setting is declared,
// so StageMain then parses the arguments twice. The first pass reads the
// preset. The second declares every setting again, with the defaults of
// that preset, and reads all of them.
type PresetFlag struct {
	Names []string // accepted values; Names[0] is the default
	Usage string   // help text, which should name the settings whose defaults it sets
}

// StageDeps are the dependencies that StageMain builds a stage from.
type StageDeps struct {
	JetStream    jetstream.JetStream
	Topology     *Topology
	Registerer   prometheus.Registerer // the registry served on /metrics
	Metrics      *Metrics
	Logger       *slog.Logger
	DrainTimeout time.Duration // the --drain-timeout setting
}

// BuildFunc builds a stage from the shared dependencies.
type BuildFunc func(deps StageDeps) (Stage, error)

// Stage is a built stage. Run returns nil when the run ends or after ctx
// ended and the work in progress was finished.
type Stage interface {
	Run(ctx context.Context) error
}

// Exit statuses of StageMain.
const (
	exitOK      = 0 // normal stop, a stop by signal, --help, or a probe that passed
	exitFailure = 1 // the stage or a probe failed
	exitUsage   = 2 // invalid flags, environment variables or arguments
)

// httpShutdownTimeout bounds the wait for HTTP requests in progress at exit.
const httpShutdownTimeout = 5 * time.Second

// StageMain runs the stage binary p with the command-line arguments args
// (without the program name) and returns its exit status. The status is 0
// after a normal stop or a stop by SIGINT, SIGTERM or the end of ctx, 1 for
// a failure, and 2 for invalid flags, environment variables or arguments.
// With "probe [URL]" as args it checks the readiness endpoint of a running
// stage instead. lookupEnv reads the environment, and nil means
// os.LookupEnv. Help goes to stdout. Errors, prefixed with p.Name, and log
// records go to stderr.
func StageMain(ctx context.Context, p Program, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	if err := p.validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return exitFailure
	}
	if len(args) > 0 && args[0] == "probe" {
		return p.probe(ctx, args[1:], stderr, lookupEnv)
	}

	s, err := p.parse(args, lookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		p.printHelp(stdout, s.flags)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return exitUsage
	}

	log := NewLogger(stderr, s.common.LogLevel).With("program", p.Name)
	log.Info("starting", "config", s.flags.LogValue())
	ctx, stop := SignalContext(ctx)
	defer stop()
	started, err := p.serve(ctx, s, log)
	switch {
	case err == nil:
		log.Info("stopped")
	case ctx.Err() != nil && !started:
		// A signal, or the caller, ended ctx while the stage was waiting for
		// NATS or was being built, so nothing failed.
		log.Info("stopped before the stage started", "err", err)
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		log.Info("stopped", "err", err)
	default:
		log.Error("stage failed", "err", err)
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return exitFailure
	}
	return exitOK
}

// validate checks the fields of p that StageMain cannot do without.
func (p *Program) validate() error {
	switch {
	case p.Name == "":
		return errors.New("invalid program: Name is empty")
	case p.Declare == nil:
		return fmt.Errorf("invalid program %s: Declare is nil", p.Name)
	case p.Preset != nil && len(p.Preset.Names) == 0:
		return fmt.Errorf("invalid program %s: Preset.Names is empty", p.Name)
	}
	return nil
}

// stageSettings are the parsed settings of one invocation.
type stageSettings struct {
	common CommonConfig
	preset string
	flags  *FlagSet
	build  BuildFunc
}

// declare declares every setting of p on a new FlagSet, with the defaults
// that the named preset sets. --preset itself keeps its default Names[0].
func (p *Program) declare(preset string, lookupEnv func(string) (string, bool)) (*stageSettings, error) {
	s := &stageSettings{common: DefaultCommonConfig(), flags: NewFlagSet(p.Name, lookupEnv)}
	s.common.MetricsAddr = p.MetricsAddr
	if p.Preset != nil {
		s.preset = p.Preset.Names[0]
		s.flags.String(&s.preset, "preset", p.Preset.Usage, OneOf(p.Preset.Names...))
	}
	s.common.Register(s.flags)
	build, err := p.Declare(s.flags, preset)
	if err != nil {
		return nil, err
	}
	if build == nil {
		return nil, fmt.Errorf("declare the settings of %s: no build function returned", p.Name)
	}
	s.build = build
	return s, nil
}

// parse parses args and the environment. For --help it returns the
// settings, with their FlagSet for the usage text, and flag.ErrHelp.
func (p *Program) parse(args []string, lookupEnv func(string) (string, bool)) (*stageSettings, error) {
	preset := ""
	if p.Preset != nil {
		preset = p.Preset.Names[0]
	}
	s, err := p.declare(preset, lookupEnv)
	if err != nil {
		return nil, err
	}
	err = s.flags.Parse(args)
	if p.Preset != nil && (err == nil || errors.Is(err, flag.ErrHelp)) {
		// The first pass only found the preset. A --preset after --help is
		// not read, so help then shows the defaults of Names[0].
		s, err = p.declare(s.preset, lookupEnv)
		if err != nil {
			return nil, err
		}
		err = s.flags.Parse(args)
	}
	if err != nil {
		return s, err
	}
	if rest := s.flags.Args(); len(rest) > 0 {
		return s, fmt.Errorf("unexpected arguments %q; the %s takes only flags, or \"probe [URL]\"", rest, p.Name)
	}
	return s, nil
}

func (p *Program) printHelp(w io.Writer, flags *FlagSet) {
	fmt.Fprintf(w, "%s\n\n", p.Summary)
	flags.PrintUsage(w)
	fmt.Fprintf(w, "\n%s probe [URL] exits 0 when URL (default: /readyz on --metrics-addr) returns 2xx, for container health checks.\n", p.Name)
}

// serve serves /metrics, /healthz and /readyz, connects to NATS, ensures
// the run's topology, and builds and runs the stage until it stops. started
// reports whether the stage's Run was called.
func (p *Program) serve(ctx context.Context, s *stageSettings, log *slog.Logger) (started bool, err error) {
	reg := prometheus.NewRegistry()
	var ready Readiness
	ready.Require("topology")
	srv, err := StartHTTP(HTTPOptions{Addr: s.common.MetricsAddr, Registry: reg, Ready: ready.Check, Logger: log})
	if err != nil {
		return false, err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP server shutdown failed", "err", err)
		}
	}()

	nc, err := Connect(ctx, s.common.Conn("cyclegan-"+p.Name, log))
	if err != nil {
		return false, err
	}
	defer func() {
		if err := CloseConn(nc, s.common.DrainTimeout); err != nil {
			log.Warn("closing the NATS connection failed", "err", err)
		}
	}()
	ready.AddConn(nc)
	js, err := jetstream.New(nc)
	if err != nil {
		return false, fmt.Errorf("create JetStream context: %w", err)
	}
	topo, err := EnsureTopology(ctx, js, s.common.Topology(), log)
	if err != nil {
		return false, err
	}
	metrics, err := NewMetrics(reg)
	if err != nil {
		return false, err
	}
	stage, err := s.build(StageDeps{
		JetStream:    js,
		Topology:     topo,
		Registerer:   reg,
		Metrics:      metrics,
		Logger:       log,
		DrainTimeout: s.common.DrainTimeout,
	})
	if err != nil {
		return false, err
	}
	if stage == nil {
		return false, fmt.Errorf("build %s: no stage returned", p.Name)
	}
	// /readyz turns 200 only now, so that it reports a stage that is
	// built and running rather than one that has only reached NATS.
	ready.Done("topology")
	return true, stage.Run(ctx)
}

// probe checks the readiness endpoint of a running stage and returns the
// exit status. Without a URL it requests /readyz on the --metrics-addr
// that the environment sets, or on p.MetricsAddr.
func (p *Program) probe(ctx context.Context, args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "%s: probe takes at most one URL, got %q; usage: %s probe [URL]\n", p.Name, args, p.Name)
		return exitUsage
	}
	url := ""
	if len(args) == 1 {
		url = args[0]
	} else {
		url = readyURL(p.probeAddr(lookupEnv))
	}
	if err := Probe(ctx, url); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return exitFailure
	}
	return exitOK
}

// probeAddr returns the --metrics-addr of a stage started with the same
// environment: the variable's value when it is set, else the default.
func (p *Program) probeAddr(lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if addr, ok := lookupEnv(EnvName("metrics-addr")); ok {
		return addr
	}
	return p.MetricsAddr
}

// readyURL returns the /readyz URL of a server listening on addr. A wildcard
// or empty host is reached through 127.0.0.1.
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
