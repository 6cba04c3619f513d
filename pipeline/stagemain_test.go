package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// stageFunc is a Stage that runs a function.
type stageFunc func(ctx context.Context) error

func (f stageFunc) Run(ctx context.Context) error { return f(ctx) }

// demoProgram returns a Program named demo with one setting of its own,
// --size, whose stage build builds. Without a preset, the default size is 1.
func demoProgram(build BuildFunc) Program {
	return Program{
		Name:        "demo",
		Summary:     "demo runs a stage for the tests of StageMain.",
		MetricsAddr: "127.0.0.1:9199",
		Declare: func(f *FlagSet, _ string) (BuildFunc, error) {
			size := 1
			f.Int(&size, "size", "pixels", "side of the test images", AtLeast(1))
			return build, nil
		},
	}
}

// noStage is a BuildFunc for tests that end before a stage is built.
func noStage(StageDeps) (Stage, error) {
	return nil, errors.New("no stage in this test")
}

func TestStageMainHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := StageMain(t.Context(), demoProgram(noStage), []string{"--help"}, &stdout, &stderr, envMap(nil))
	if code != 0 {
		t.Fatalf("exit status %d, want 0; stderr: %s", code, stderr.String())
	}
	help := stdout.String()
	for _, want := range []string{
		"demo runs a stage for the tests of StageMain.",
		"Usage: demo [flags]",
		"--size", "CYCLEGAN_SIZE",
		"--nats-url", "CYCLEGAN_NATS_URL",
		"default: 127.0.0.1:9199",
		"demo probe [URL]",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if !strings.HasPrefix(help, "demo runs a stage") {
		t.Errorf("help does not start with the summary:\n%s", help)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
}

func TestStageMainInvalidSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // part of the message
	}{
		{"unknown flag", []string{"--no-such-flag"}, nil, "no-such-flag"},
		{"value below minimum", []string{"--size", "0"}, nil, "--size"},
		{"invalid environment value", nil, map[string]string{"CYCLEGAN_RUN": "no spaces"}, "CYCLEGAN_RUN"},
		{"unexpected arguments", []string{"--size", "2", "stray", "words"}, nil, `unexpected arguments ["stray" "words"]`},
		{"probe with two URLs", []string{"probe", "http://127.0.0.1:1/readyz", "extra"}, nil, "at most one URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := StageMain(t.Context(), demoProgram(noStage), tt.args, &stdout, &stderr, envMap(tt.env))
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if !strings.HasPrefix(stderr.String(), "demo: ") {
				t.Errorf("stderr %q does not start with \"demo: \"", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// readyServer starts an HTTP server on 127.0.0.1 that responds to /readyz
// with status and to any other path with 404, and returns its port.
func readyServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestStageMainProbe(t *testing.T) {
	ready := readyServer(t, http.StatusOK)
	notReady := readyServer(t, http.StatusServiceUnavailable)
	tests := []struct {
		name        string
		metricsAddr string // the program's default
		env         map[string]string
		args        []string
		want        int
	}{
		{"explicit URL", "127.0.0.1:1", nil, []string{"probe", "http://127.0.0.1:" + ready + "/readyz"}, 0},
		{"explicit URL not ready", "127.0.0.1:1", nil, []string{"probe", "http://127.0.0.1:" + notReady + "/readyz"}, 1},
		{"default address", "127.0.0.1:" + ready, nil, []string{"probe"}, 0},
		{"default address not ready", "127.0.0.1:" + notReady, nil, []string{"probe"}, 1},
		{"wildcard address from environment", "127.0.0.1:1", map[string]string{"CYCLEGAN_METRICS_ADDR": ":" + ready}, []string{"probe"}, 0},
		{"address from environment wins", "127.0.0.1:" + ready, map[string]string{"CYCLEGAN_METRICS_ADDR": "127.0.0.1:" + notReady}, []string{"probe"}, 1},
		{"nothing listening", "127.0.0.1:1", nil, []string{"probe"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := demoProgram(noStage)
			p.MetricsAddr = tt.metricsAddr
			var stdout, stderr bytes.Buffer
			code := StageMain(t.Context(), p, tt.args, &stdout, &stderr, envMap(tt.env))
			if code != tt.want {
				t.Errorf("exit status %d, want %d; stderr: %s", code, tt.want, stderr.String())
			}
			if code == 1 && !strings.HasPrefix(stderr.String(), "demo: probe ") {
				t.Errorf("stderr %q does not start with \"demo: probe \"", stderr.String())
			}
		})
	}
}

func TestReadyURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:9101", "http://127.0.0.1:9101/readyz"},
		{":9101", "http://127.0.0.1:9101/readyz"},
		{"0.0.0.0:9101", "http://127.0.0.1:9101/readyz"},
		{"[::]:9101", "http://127.0.0.1:9101/readyz"},
		{"[::1]:9101", "http://[::1]:9101/readyz"},
		{"localhost:9101", "http://localhost:9101/readyz"},
	}
	for _, tt := range tests {
		if got := readyURL(tt.addr); got != tt.want {
			t.Errorf("readyURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// presetProgram returns a Program with --preset small or large, which sets
// the default of --size to 10 or 20. *size holds the size of the last
// declaration.
func presetProgram(size **int) Program {
	p := demoProgram(noStage)
	p.Preset = &PresetFlag{Names: []string{"small", "large"}, Usage: "preset that sets the default of --size: small or large"}
	p.Declare = func(f *FlagSet, preset string) (BuildFunc, error) {
		s := map[string]int{"small": 10, "large": 20}[preset]
		if s == 0 {
			return nil, fmt.Errorf("unknown preset %q", preset)
		}
		*size = &s
		f.Int(&s, "size", "pixels", "side of the test images", AtLeast(1))
		return noStage, nil
	}
	return p
}

func TestStageMainPresetSetsDefault(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, 10},
		{[]string{"--preset", "large"}, nil, 20},
		{[]string{"--preset=large", "--size", "5"}, nil, 5},
		{[]string{"--size", "5", "--preset", "large"}, nil, 5},
		{nil, map[string]string{"CYCLEGAN_PRESET": "large"}, 20},
		{[]string{"--preset", "small"}, map[string]string{"CYCLEGAN_PRESET": "large"}, 10},
		{nil, map[string]string{"CYCLEGAN_PRESET": "large", "CYCLEGAN_SIZE": "7"}, 7},
	}
	for _, tt := range tests {
		var size *int
		p := presetProgram(&size)
		s, err := p.parse(tt.args, envMap(tt.env))
		if err != nil {
			t.Errorf("parse(%q, env %v): %v", tt.args, tt.env, err)
			continue
		}
		if *size != tt.want {
			t.Errorf("parse(%q, env %v): size %d, want %d", tt.args, tt.env, *size, tt.want)
		}
		if got := s.flags.LogValue().String(); !strings.Contains(got, fmt.Sprintf("size=%d", tt.want)) {
			t.Errorf("parse(%q, env %v): logged settings %s lack size=%d", tt.args, tt.env, got, tt.want)
		}
	}
}

func TestStageMainPresetHelpShowsItsDefault(t *testing.T) {
	var size *int
	var stdout, stderr bytes.Buffer
	code := StageMain(t.Context(), presetProgram(&size), []string{"--preset", "large", "--help"}, &stdout, &stderr, envMap(nil))
	if code != 0 {
		t.Fatalf("exit status %d, want 0; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "default: 20;") {
		t.Errorf("help lacks the large preset's size default 20:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "--preset") {
		t.Errorf("help lacks --preset:\n%s", stdout.String())
	}
}

func TestStageMainInvalidPreset(t *testing.T) {
	var size *int
	var stdout, stderr bytes.Buffer
	code := StageMain(t.Context(), presetProgram(&size), []string{"--preset", "huge"}, &stdout, &stderr, envMap(nil))
	if code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	if !strings.HasPrefix(stderr.String(), "demo: ") {
		t.Errorf("stderr %q does not start with \"demo: \"", stderr.String())
	}
	if !strings.Contains(stderr.String(), "--preset") {
		t.Errorf("stderr %q does not name --preset", stderr.String())
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestStageMainRunsStage(t *testing.T) {
	srv := startEmbedded(t, EmbeddedOptions{})
	metricsAddr := freeAddr(t)
	var got StageDeps
	var readyStatus int
	build := func(d StageDeps) (Stage, error) {
		got = d
		return stageFunc(func(ctx context.Context) error {
			readyStatus, _ = httpGet(t, "http://"+metricsAddr+"/readyz")
			return nil
		}), nil
	}
	args := []string{"--nats-url", srv.ClientURL(), "--run", "stagemain", "--metrics-addr", metricsAddr, "--drain-timeout", "7s", "--size", "3"}
	var stdout bytes.Buffer
	stderr := &logBuffer{} // NATS callbacks may still log after StageMain returns
	if code := StageMain(t.Context(), demoProgram(build), args, &stdout, stderr, envMap(nil)); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, stderr.String())
	}

	if got.Topology == nil || got.Topology.Run != "stagemain" {
		t.Errorf("stage built with topology %+v, want one of run stagemain", got.Topology)
	}
	if got.JetStream == nil || got.Registerer == nil || got.Metrics == nil || got.Logger == nil {
		t.Errorf("stage built with a nil dependency: %+v", got)
	}
	if got.DrainTimeout != 7*time.Second {
		t.Errorf("DrainTimeout %s, want the --drain-timeout 7s", got.DrainTimeout)
	}
	if readyStatus != http.StatusOK {
		t.Errorf("/readyz returned %d while the stage ran, want 200", readyStatus)
	}
	for _, want := range []string{"msg=starting", "config.size=3", "program=demo", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestStageMainStageFailure(t *testing.T) {
	srv := startEmbedded(t, EmbeddedOptions{})
	tests := []struct {
		name  string
		build BuildFunc
	}{
		{"build fails", func(StageDeps) (Stage, error) {
			return nil, errors.New("write checkpoint: disk full")
		}},
		{"run fails", func(StageDeps) (Stage, error) {
			return stageFunc(func(context.Context) error { return errors.New("write checkpoint: disk full") }), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--nats-url", srv.ClientURL(), "--run", "failure", "--metrics-addr", "127.0.0.1:0"}
			var stdout bytes.Buffer
			stderr := &logBuffer{}
			if code := StageMain(t.Context(), demoProgram(tt.build), args, &stdout, stderr, envMap(nil)); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), "\ndemo: write checkpoint: disk full\n") {
				t.Errorf("stderr lacks the line \"demo: write checkpoint: disk full\":\n%s", stderr.String())
			}
		})
	}
}

func TestStageMainStopBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	built := false
	build := func(StageDeps) (Stage, error) {
		built = true
		return nil, errors.New("built after the stop")
	}
	// Nothing listens on port 1, so StageMain waits for NATS until ctx ends.
	args := []string{"--nats-url", "nats://127.0.0.1:1", "--metrics-addr", "127.0.0.1:0"}
	stderr := &logBuffer{}
	exit := make(chan int, 1)
	go func() {
		var stdout bytes.Buffer
		exit <- StageMain(ctx, demoProgram(build), args, &stdout, stderr, envMap(nil))
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()

	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("StageMain did not return after its context ended; stderr:\n%s", stderr.String())
	}
	if built {
		t.Error("the stage was built although NATS was never reached")
	}
	if !strings.Contains(stderr.String(), "stopped before the stage started") {
		t.Errorf("log lacks the stop before start:\n%s", stderr.String())
	}
}

func TestStageMainStopWhileRunning(t *testing.T) {
	srv := startEmbedded(t, EmbeddedOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	build := func(StageDeps) (Stage, error) {
		return stageFunc(func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return fmt.Errorf("wait for work: %w", ctx.Err())
		}), nil
	}
	args := []string{"--nats-url", srv.ClientURL(), "--run", "stop", "--metrics-addr", "127.0.0.1:0"}
	var stdout bytes.Buffer
	stderr := &logBuffer{}
	if code := StageMain(ctx, demoProgram(build), args, &stdout, stderr, envMap(nil)); code != 0 {
		t.Errorf("exit status %d for a stage that returned the context's error after the stop, want 0; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "demo: ") {
		t.Errorf("stderr has an error message:\n%s", stderr.String())
	}
}
