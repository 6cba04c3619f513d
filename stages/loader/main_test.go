package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/pipeline"
)

func TestHelpListsEnvironmentVariables(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 {
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
		s, err := parseSettings(tt.args)
		if err != nil {
			t.Fatalf("parseSettings(%q): %v", tt.args, err)
		}
		if s.loader.LoadSize != tt.want {
			t.Errorf("parseSettings(%q): load size %d, want %d", tt.args, s.loader.LoadSize, tt.want)
		}
	}
}

func TestInvalidFlagsExitStatus(t *testing.T) {
	for _, args := range [][]string{{"--load-size", "0"}, {"--preset", "huge"}, {"--no-such-flag"}, {"stray"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q): exit status %d, want 2", args, code)
		}
		if !strings.HasPrefix(stderr.String(), "loader: ") {
			t.Errorf("run(%q): stderr %q, want a message starting with \"loader: \"", args, stderr.String())
		}
	}
}

func TestReadyURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:9101", "http://127.0.0.1:9101/readyz"},
		{":9101", "http://127.0.0.1:9101/readyz"},
		{"0.0.0.0:9101", "http://127.0.0.1:9101/readyz"},
		{"[::1]:9101", "http://[::1]:9101/readyz"},
	}
	for _, tt := range tests {
		if got := readyURL(tt.addr); got != tt.want {
			t.Errorf("readyURL(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestProbeFailsWithoutServer(t *testing.T) {
	var stderr bytes.Buffer
	if code := probe([]string{"http://127.0.0.1:1/readyz"}, &stderr); code != 1 {
		t.Errorf("probe of a closed port: exit status %d, want 1", code)
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
	if code := run(args, &stdout, &stderr); code != 0 {
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
