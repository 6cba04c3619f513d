package trainer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/color"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// testCrop is the crop size of the tiny test model, the smallest the
// discriminator accepts rounded to a multiple of 8.
const testCrop = 32

// env is an embedded NATS server with the topology of one run.
type env struct {
	topo *pipeline.Topology
	js   jetstream.JetStream
}

func startEnv(t *testing.T, run string) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	topo, err := pipeline.EnsureTopology(ctx, js, pipeline.TopologyConfig{Run: run, TrainMaxBytes: 8 << 20}, nil)
	if err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &env{topo: topo, js: js}
}

// tinyConfig returns a config whose steps take a fraction of a second:
// 32 px crops, 8 channels, 2 residual blocks.
func tinyConfig(t *testing.T, output string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CropSize = testCrop
	cfg.NGF, cfg.NDF, cfg.Blocks = 8, 8, 2
	cfg.PoolSize = 4
	cfg.DatasetSize = 4
	cfg.Epochs, cfg.EpochsDecay = 1, 1
	cfg.LogEvery = 1
	cfg.CheckpointEvery = 1000
	cfg.Output = output
	cfg.DrainTimeout = 20 * time.Second
	return cfg
}

// trainPairs returns n train pairs of the bundled dataset's first images,
// resized to the crop size.
func trainPairs(t *testing.T, run string, n int) []*messages.Pair {
	t.Helper()
	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatalf("bundled dataset: %v", err)
	}
	load := func(dir string, i int) ([]uint8, string) {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		name := entries[i%len(entries)].Name()
		img, err := dataset.LoadImage(fsys, path.Join(dir, name), testCrop, dataset.Limits{})
		if err != nil {
			t.Fatalf("load %s/%s: %v", dir, name, err)
		}
		pix, err := messages.AppendHWCFromImage(nil, img, color.White)
		if err != nil {
			t.Fatalf("pixels of %s/%s: %v", dir, name, err)
		}
		return pix, name
	}
	pairs := make([]*messages.Pair, n)
	for i := range pairs {
		a, nameA := load("trainA", i)
		b, nameB := load("trainB", i)
		pairs[i] = &messages.Pair{
			Kind: messages.KindTrain, Run: run, Sequence: uint64(i), NameA: nameA, NameB: nameB,
			Height: testCrop, Width: testCrop, LoadHeight: testCrop, LoadWidth: testCrop, A: a, B: b,
		}
	}
	return pairs
}

// publish stores payloads on the train stream under unique message ids.
func (e *env) publish(t *testing.T, prefix string, payloads ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, data := range payloads {
		msgID := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := e.js.Publish(ctx, e.topo.TrainSubject, data, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatalf("publish %s: %v", msgID, err)
		}
	}
}

func (e *env) publishPairs(t *testing.T, prefix string, pairs []*messages.Pair) {
	t.Helper()
	for i, p := range pairs {
		data, err := messages.EncodePair(p)
		if err != nil {
			t.Fatalf("encode pair %d: %v", i, err)
		}
		e.publish(t, fmt.Sprintf("%s-%d", prefix, i), data)
	}
}

// streamMessages returns the number of messages stored in a stream.
func (e *env) streamMessages(t *testing.T, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info %s: %v", name, err)
	}
	return info.State.Msgs
}

// announcements returns every checkpoint announcement on the run's stream.
func (e *env) announcements(t *testing.T) []*messages.Checkpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.topo.CheckpointStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []*messages.Checkpoint
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		ann, err := messages.DecodeCheckpoint(msg.Data)
		if err != nil {
			t.Fatalf("announcement at sequence %d does not decode: %v", seq, err)
		}
		out = append(out, ann)
	}
	return out
}

// objectDigest returns the SHA-256 of an object in lowercase hex, or "" when
// the object does not exist.
func (e *env) objectDigest(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, err := e.topo.Checkpoints.GetBytes(ctx, name)
	if err != nil {
		return ""
	}
	return sha256Hex(data)
}

func (e *env) runState(t *testing.T) pipeline.RunState {
	t.Helper()
	store, err := pipeline.NewRunStore(e.topo.Runs, e.topo.Run, nil, nil)
	if err != nil {
		t.Fatalf("run store: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state, _, err := store.Get(ctx)
	if err != nil {
		t.Fatalf("run state: %v", err)
	}
	return state
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// newTrainer builds a Trainer with its own registry and a logger that
// writes JSON records to the returned buffer.
func (e *env) newTrainer(t *testing.T, cfg Config) (*Trainer, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	pm, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatalf("pipeline metrics: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := New(cfg, Deps{Topology: e.topo, Registerer: reg, Metrics: pm, Logger: log})
	if err != nil {
		t.Fatalf("new trainer: %v", err)
	}
	return tr, reg, logs
}

// runTrainer runs tr and fails the test if it does not return within a
// minute.
func runTrainer(t *testing.T, ctx context.Context, tr *Trainer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := tr.Run(ctx)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("Run did not return within a minute")
	}
	return err
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the decoded log records whose msg is msg.
func (b *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// metricValue returns the value of the counter or gauge name whose labels
// include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, want)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(want)
}

// trainLines decodes the lines of a metrics.jsonl file.
func trainLines(t *testing.T, path string) []trainRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var out []trainRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var rec trainRecord
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("%s line %q does not decode: %v", filepath.Base(path), sc.Text(), err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out
}

// steps returns the Step of each announcement.
func steps(anns []*messages.Checkpoint) []int64 {
	var out []int64
	for _, a := range anns {
		out = append(out, a.Step)
	}
	return out
}
