package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/pipeline"
)

// noEnv is an empty environment, so that the test runs the same under any
// CYCLEGAN_* variables.
func noEnv(string) (string, bool) { return "", false }

func TestHelpListsFlagsWithVariables(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("--help exit status %d, stderr %s", code, stderr.String())
	}
	for _, want := range []string{"--dataset", "CYCLEGAN_DATASET", "--output", "CYCLEGAN_OUTPUT",
		"--eval-samples", "CYCLEGAN_EVAL_SAMPLES", "127.0.0.1:9104", "probe"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestInvalidSettingExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--eval-samples", "0"}, &stdout, &stderr, noEnv); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "--eval-samples") {
		t.Errorf("error %q does not name the flag", stderr.String())
	}
}

func TestProbe(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()

	cases := []struct {
		args []string
		want int
	}{
		{[]string{"probe", ready.URL}, 0},
		{[]string{"probe", notReady.URL}, 1},
		{[]string{"probe", ready.URL, "extra"}, 2},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), c.args, &stdout, &stderr, noEnv); code != c.want {
			t.Errorf("run(%q) = %d, want %d (stderr %s)", c.args, code, c.want, stderr.String())
		}
	}
}

// writeTinyTestSet writes two 16×16 PNG files into each of testA and testB under dir.
func writeTinyTestSet(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"testA", "testB"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, shade := range []uint8{40, 200} {
			img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
			for p := 0; p < len(img.Pix); p += 4 {
				img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = shade, uint8(p), shade/2, 0xff
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, sub, fmt.Sprintf("%d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRunStopsWhenRunFinished(t *testing.T) {
	srv, err := pipeline.StartEmbedded(t.Context(), pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer srv.Shutdown(context.Background())

	// The run ended before the evaluator started, with nothing announced.
	nc, err := pipeline.Connect(t.Context(), pipeline.ConnOptions{URLs: []string{srv.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := pipeline.EnsureTopology(t.Context(), js, pipeline.TopologyConfig{Run: "bin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := pipeline.NewRunStore(topo.Runs, "bin", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(t.Context(), pipeline.RunState{Status: pipeline.StatusFinished}, 0); err != nil {
		t.Fatal(err)
	}

	data, out := t.TempDir(), t.TempDir()
	writeTinyTestSet(t, data)
	var stdout bytes.Buffer
	var stderr lockedBuffer // NATS connection callbacks may still log after run returns
	args := []string{"--nats-url", srv.ClientURL(), "--run", "bin", "--metrics-addr", "127.0.0.1:0",
		"--dataset", data, "--output", out}
	if code := run(t.Context(), args, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "bin", "index.html")); err != nil {
		t.Errorf("index page: %v", err)
	}
	if !strings.Contains(stderr.String(), "every announced checkpoint handled") {
		t.Errorf("log lacks the stop reason:\n%s", stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
