package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/messages"
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
		"CYCLEGAN_CROP_SIZE", "CYCLEGAN_NO_FLIP", "CYCLEGAN_SEED", "CYCLEGAN_CONCURRENCY",
	} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("--help output lacks %s", name)
		}
	}
	if !strings.Contains(stdout.String(), "127.0.0.1:9102") {
		t.Errorf("--help output lacks the default metrics address 127.0.0.1:9102")
	}
}

func TestPresetSetsCropSizeDefault(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{nil, 64},
		{[]string{"--preset", "reference"}, 256},
		{[]string{"--preset", "reference", "--crop-size", "200"}, 200},
	}
	// The context has already ended, so the augmenter logs its settings and stops
	// while it waits for NATS, where nothing listens on port 1.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tt := range tests {
		var stdout, stderr syncBuffer
		args := append([]string{"--nats-url", "nats://127.0.0.1:1", "--metrics-addr", "127.0.0.1:0"}, tt.args...)
		if code := run(ctx, args, &stdout, &stderr, noEnv); code != 0 {
			t.Fatalf("run(%q): exit status %d, want 0; stderr:\n%s", tt.args, code, stderr.String())
		}
		if want := fmt.Sprintf("config.crop-size=%d ", tt.want); !strings.Contains(stderr.String(), want) {
			t.Errorf("run(%q): start log lacks %q:\n%s", tt.args, want, stderr.String())
		}
	}
}

func TestInvalidFlagsExitStatus(t *testing.T) {
	for _, args := range [][]string{{"--crop-size", "0"}, {"--concurrency", "0"}, {"--preset", "huge"}, {"stray"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr, noEnv); code != 2 {
			t.Errorf("run(%q): exit status %d, want 2", args, code)
		}
		if !strings.HasPrefix(stderr.String(), "augmenter: ") {
			t.Errorf("run(%q): stderr %q, want a message starting with \"augmenter: \"", args, stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running command
// and the reads of the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunAugmentsUntilRunFinished(t *testing.T) {
	srv, err := pipeline.StartEmbedded(t.Context(), pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
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
	topo, err := pipeline.EnsureTopology(ctx, js, pipeline.TopologyConfig{Run: "bintest"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	args := []string{"--nats-url", srv.ClientURL(), "--run", "bintest", "--metrics-addr", "127.0.0.1:0", "--crop-size", "8"}
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, args, &stdout, &stderr, noEnv) }()

	pix := make([]uint8, 16*16*3)
	raw, err := messages.EncodePair(&messages.Pair{
		Kind: messages.KindRaw, Run: "bintest", Sequence: 5,
		Height: 16, Width: 16, LoadHeight: 16, LoadWidth: 16, A: pix, B: pix,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, topo.RawSubject, raw, jetstream.WithMsgID("raw-5")); err != nil {
		t.Fatal(err)
	}
	train, err := js.Stream(ctx, topo.TrainStream)
	if err != nil {
		t.Fatal(err)
	}
	var msg *jetstream.RawStreamMsg
	for msg == nil {
		msg, err = train.GetLastMsgForSubject(ctx, topo.TrainSubject)
		if err != nil && ctx.Err() != nil {
			t.Fatalf("no train pair published: %v; stderr:\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pair, err := messages.DecodePair(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Kind != messages.KindTrain || pair.Sequence != 5 || pair.Height != 8 {
		t.Errorf("train pair kind %v sequence %d height %d, want train, 5, 8", pair.Kind, pair.Sequence, pair.Height)
	}

	store, err := pipeline.NewRunStore(topo.Runs, "bintest", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, pipeline.RunState{Status: pipeline.StatusFinished}, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit status %d after the run finished, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("augmenter did not exit after the run finished; stderr:\n%s", stderr.String())
	}
}
