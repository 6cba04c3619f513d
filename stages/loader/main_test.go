package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/pipeline"
)

// noEnv is an empty environment, so that the test runs the same under any
// CYCLEGAN_* variables.
func noEnv(string) (string, bool) { return "", false }

func TestHelpListsEnvironmentVariables(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr: %s", code, stderr.String())
	}
	for _, name := range []string{
		"CYCLEGAN_PRESET", "CYCLEGAN_NATS_URL", "CYCLEGAN_RUN", "CYCLEGAN_METRICS_ADDR",
		"CYCLEGAN_DATASET", "CYCLEGAN_LOAD_SIZE", "CYCLEGAN_MAX_PIXELS", "CYCLEGAN_CACHE_BYTES",
		"CYCLEGAN_SEED", "CYCLEGAN_BATCH_SIZE", "CYCLEGAN_MAX_PAIRS",
	} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("--help output lacks %s", name)
		}
	}
	if !strings.Contains(stdout.String(), "127.0.0.1:9101") {
		t.Errorf("--help output lacks the default metrics address 127.0.0.1:9101")
	}
}

func TestPresetSetsLoadSizeDefault(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{nil, 72},
		{[]string{"--preset", "reference"}, 286},
		{[]string{"--preset", "reference", "--load-size", "100"}, 100},
		{[]string{"--load-size", "100", "--preset=reference"}, 100},
	}
	for _, tt := range tests {
		log := startLog(t, tt.args)
		if want := fmt.Sprintf("config.load-size=%d ", tt.want); !strings.Contains(log, want) {
			t.Errorf("loader %q: start log lacks %q:\n%s", tt.args, want, log)
		}
	}
}

// startLog runs the loader with args under a context that has already ended, so that
// it logs its settings and stops while it waits for NATS, where nothing listens on
// port 1. It returns the log.
func startLog(t *testing.T, args []string) string {
	t.Helper()
	// A file, unlike a bytes.Buffer, is safe for the writes of NATS callbacks that
	// may still log after run returned.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout bytes.Buffer
	args = append([]string{"--nats-url", "nats://127.0.0.1:1", "--metrics-addr", "127.0.0.1:0"}, args...)
	code := run(ctx, args, &stdout, stderr, noEnv)
	log, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("loader %q: exit status %d, want 0; stderr:\n%s", args, code, log)
	}
	return string(log)
}

func TestInvalidFlagsExitStatus(t *testing.T) {
	for _, args := range [][]string{{"--load-size", "0"}, {"--preset", "huge"}, {"--no-such-flag"}, {"stray"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr, noEnv); code != 2 {
			t.Errorf("run(%q): exit status %d, want 2", args, code)
		}
		if !strings.HasPrefix(stderr.String(), "loader: ") {
			t.Errorf("run(%q): stderr %q, want a message starting with \"loader: \"", args, stderr.String())
		}
	}
}

func TestProbeFailsWithoutServer(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"probe", "http://127.0.0.1:1/readyz"}, &stdout, &stderr, noEnv); code != 1 {
		t.Errorf("probe of a closed port: exit status %d, want 1", code)
	}
	if !strings.HasPrefix(stderr.String(), "loader: ") {
		t.Errorf("stderr %q, want a message starting with \"loader: \"", stderr.String())
	}
}

func TestRunPublishesPairs(t *testing.T) {
	srv, err := pipeline.StartEmbedded(t.Context(), pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	var stdout, stderr bytes.Buffer
	args := []string{"--nats-url", srv.ClientURL(), "--run", "bintest", "--metrics-addr", "127.0.0.1:0", "--max-pairs", "3", "--load-size", "32"}
	if code := run(t.Context(), args, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, stderr.String())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := pipeline.Connect(ctx, pipeline.ConnOptions{URLs: []string{srv.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "CYCLEGAN_RAW_bintest")
	if err != nil {
		t.Fatalf("raw stream of run bintest: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("raw stream holds %d messages, want 3", info.State.Msgs)
	}
}
