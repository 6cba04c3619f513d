package main

import (
	"bytes"
	"context"
	"image/color"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

func noEnv(string) (string, bool) { return "", false }

func TestHelpListsFlagsAndVariables(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("--help exited %d, stderr %q", code, stderr.String())
	}
	for _, want := range []string{"--steps", "CYCLEGAN_STEPS", "--checkpoint-every", "CYCLEGAN_CHECKPOINT_EVERY", "CYCLEGAN_NATS_URL", "CYCLEGAN_FRESH"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help text lacks %s", want)
		}
	}
}

func TestInvalidSettingExitsTwo(t *testing.T) {
	cases := [][]string{
		{"--steps", "-1"},
		{"--crop-size", "30"},
		{"--no-such-flag"},
		{"extra-argument"},
	}
	for _, args := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, noEnv); code != 2 {
			t.Errorf("%q exited %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "trainer:") {
			t.Errorf("%q: stderr %q lacks an error message", args, stderr.String())
		}
	}
}

func TestProbe(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()

	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"probe", ready.URL}, &stderr, &stderr, noEnv); code != 0 {
		t.Errorf("probe of a ready server exited %d: %s", code, stderr.String())
	}
	if code := run(context.Background(), []string{"probe", notReady.URL}, &stderr, &stderr, noEnv); code != 1 {
		t.Errorf("probe of a server answering 503 exited %d, want 1", code)
	}
}

func TestTrainerBinaryTrainsOneStep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()

	const runID = "binary"
	publishPair(t, ctx, srv.ClientURL(), runID)

	out := t.TempDir()
	args := []string{
		"--nats-url", srv.ClientURL(), "--run", runID, "--metrics-addr", "127.0.0.1:0",
		"--crop-size", "32", "--ngf", "8", "--ndf", "8", "--blocks", "2", "--dataset-size", "4",
		"--steps", "1", "--output", out,
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("trainer exited %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "training finished") {
		t.Errorf("log lacks 'training finished':\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, runID, trainer.LatestFile)); err != nil {
		t.Errorf("no latest checkpoint file: %v", err)
	}
}

// publishPair publishes one 32×32 train pair made of the bundled dataset's
// first images.
func publishPair(t *testing.T, ctx context.Context, url, run string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, pipeline.TopologyConfig{Run: run}, nil)
	if err != nil {
		t.Fatalf("ensure topology: %v", err)
	}

	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	image := func(dir string) []uint8 {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatal(err)
		}
		img, err := dataset.LoadImage(fsys, path.Join(dir, entries[0].Name()), 32, dataset.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		pix, err := messages.AppendHWCFromImage(nil, img, color.White)
		if err != nil {
			t.Fatal(err)
		}
		return pix
	}

	data, err := messages.EncodePair(&messages.Pair{
		Kind: messages.KindTrain, Run: run, Height: 32, Width: 32, LoadHeight: 32, LoadWidth: 32,
		A: image("trainA"), B: image("trainB"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.TrainSubject, data, jetstream.WithMsgID("pair-0")); err != nil {
		t.Fatalf("publish: %v", err)
	}
}
