package loader

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// Source colours of the small test dataset, by path relative to the domain folder.
var (
	colorsA = map[string]color.NRGBA{
		"a0.png":     {200, 10, 10, 255},
		"a1.png":     {10, 200, 10, 255},
		"sub/a2.png": {10, 10, 200, 255},
	}
	colorsB = map[string]color.NRGBA{
		"b0.png":               {250, 250, 0, 255},
		"b1.png":               {0, 250, 250, 255},
		"nested/deeper/b2.png": {250, 0, 250, 255},
	}
)

// writeSmallDataset writes a dataset of 8×8 PNGs and returns its directory. trainA
// contains three good images, one truncated, one with damaged image data, a .DS_Store
// and a text file. trainB contains three good images, one in a nested folder.
func writeSmallDataset(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string][]byte{}
	for name, c := range colorsA {
		files["trainA/"+name] = uniformPNG(t, c)
	}
	for name, c := range colorsB {
		files["trainB/"+name] = uniformPNG(t, c)
	}

	good := uniformPNG(t, color.NRGBA{1, 2, 3, 255})
	// The header is intact, so only the full decode finds either defect.
	files["trainA/truncated.png"] = good[:len(good)-20]
	damaged := bytes.Clone(good)
	idat := bytes.Index(damaged, []byte("IDAT"))
	for i := idat + 4; i < idat+12; i++ {
		damaged[i] = 0xff
	}
	files["trainA/corrupt.png"] = damaged
	files["trainA/.DS_Store"] = []byte("\x00\x00\x00\x01Bud1")
	files["trainA/notes.txt"] = []byte("not an image")
	writeFiles(t, root, files)
	return root
}

// expectedNameA returns the A image the loader uses for sampler slot idx of the small
// dataset: files that fail to decode are replaced by the next file in sorted order.
func expectedNameA(idx int) string {
	sorted := []string{"a0.png", "a1.png", "corrupt.png", "sub/a2.png", "truncated.png"}
	for {
		name := sorted[idx%len(sorted)]
		if name != "corrupt.png" && name != "truncated.png" {
			return name
		}
		idx++
	}
}

func TestLoaderPublishesPairs(t *testing.T) {
	tests := []struct {
		name       string
		cacheBytes int64
		decodesA   int // images of A decoded while publishing 10 pairs
	}{
		{"cache on", 1 << 20, 3},
		{"cache off", 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			cfg := DefaultConfig()
			cfg.Dataset = writeSmallDataset(t)
			cfg.LoadSize = 16
			cfg.Seed = 3
			cfg.MaxPairs = 10
			cfg.CacheBytes = tt.cacheBytes
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := st.Run(t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}

			got := streamPairs(t, env.js, env.topo.RawStream)
			if len(got) != cfg.MaxPairs {
				t.Fatalf("raw stream holds %d pairs, want %d", len(got), cfg.MaxPairs)
			}
			// Domain A has five files that pass the scan, so an epoch is five pairs.
			sampler, err := NewSampler(5, 3, uint64(cfg.Seed), 0)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range got {
				ia, _, epoch := sampler.Next()
				p := m.pair
				if p.Kind != messages.KindRaw || p.Run != "loadtest" {
					t.Errorf("pair %d: kind %v run %q, want raw and loadtest", i, p.Kind, p.Run)
				}
				if p.Sequence != uint64(i) || p.Epoch != uint32(epoch) {
					t.Errorf("pair %d: sequence %d epoch %d, want %d and %d", i, p.Sequence, p.Epoch, i, epoch)
				}
				if wantID := MessageID("loadtest", epoch, int64(i)); m.id != wantID {
					t.Errorf("pair %d: message id %q, want %q", i, m.id, wantID)
				}
				if p.Height != 16 || p.Width != 16 || p.LoadHeight != 16 || p.LoadWidth != 16 {
					t.Errorf("pair %d: size %d×%d load %d×%d, want 16×16", i, p.Height, p.Width, p.LoadHeight, p.LoadWidth)
				}
				if want := expectedNameA(ia); p.NameA != want {
					t.Errorf("pair %d: name A %q, want %q", i, p.NameA, want)
				}
				checkUniform(t, "pair A", p.NameA, p.A, colorsA)
				checkUniform(t, "pair B", p.NameB, p.B, colorsB)
			}

			labels := map[string]string{"run": "loadtest"}
			if v, _ := metricValue(t, env.reg, "cyclegan_loader_pairs_total", labels); v != 10 {
				t.Errorf("pairs_total %v, want 10", v)
			}
			if v, _ := metricValue(t, env.reg, "cyclegan_loader_images_total", map[string]string{"domain": "A"}); v != float64(tt.decodesA) {
				t.Errorf("images_total{domain=A} %v, want %d", v, tt.decodesA)
			}
			decodesB, _ := metricValue(t, env.reg, "cyclegan_loader_images_total", map[string]string{"domain": "B"})
			if tt.cacheBytes > 0 && (decodesB < 1 || decodesB > 3) {
				t.Errorf("images_total{domain=B} %v with the cache on, want 1 to 3", decodesB)
			}
			if tt.cacheBytes == 0 && decodesB != 10 {
				t.Errorf("images_total{domain=B} %v with the cache off, want 10", decodesB)
			}

			wantSkips := map[dataset.SkipReason]float64{
				dataset.ReasonHidden:    1, // .DS_Store, at scan time
				dataset.ReasonExtension: 1, // notes.txt, at scan time
				dataset.ReasonTruncated: 1, // truncated.png, at decode time
				dataset.ReasonCorrupt:   1, // corrupt.png, at decode time
			}
			for _, reason := range dataset.AllSkipReasons() {
				v, ok := metricValue(t, env.reg, "cyclegan_loader_skipped_total", map[string]string{"run": "loadtest", "reason": string(reason)})
				if !ok {
					t.Errorf("skipped_total{reason=%s} missing, want a series at zero or more", reason)
				}
				if v != wantSkips[reason] {
					t.Errorf("skipped_total{reason=%s} %v, want %v", reason, v, wantSkips[reason])
				}
			}
		})
	}
}

// checkUniform checks that pix is the uniform colour of the source file name.
func checkUniform(t *testing.T, what, name string, pix []uint8, colors map[string]color.NRGBA) {
	t.Helper()
	c, ok := colors[name]
	if !ok {
		t.Errorf("%s: name %q is not a usable file of the dataset", what, name)
		return
	}
	for i := 0; i < len(pix); i += 3 {
		if pix[i] != c.R || pix[i+1] != c.G || pix[i+2] != c.B {
			t.Errorf("%s %s: pixel %d is %v, want %v", what, name, i/3, pix[i:i+3], c)
			return
		}
	}
}

func TestLoaderBundledDataset(t *testing.T) {
	env := newTestEnv(t, pipeline.TopologyConfig{})
	cfg := DefaultConfig()
	cfg.MaxPairs = 3
	st, err := New(cfg, env.deps())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := st.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}

	got := streamPairs(t, env.js, env.topo.RawStream)
	if len(got) != 3 {
		t.Fatalf("raw stream holds %d pairs, want 3", len(got))
	}
	for i, m := range got {
		if m.pair.Height != 72 || m.pair.Width != 72 {
			t.Errorf("pair %d is %d×%d, want the default load size 72×72", i, m.pair.Height, m.pair.Width)
		}
		if !strings.HasSuffix(m.pair.NameA, ".png") || !strings.HasSuffix(m.pair.NameB, ".png") {
			t.Errorf("pair %d names %q and %q, want PNG files", i, m.pair.NameA, m.pair.NameB)
		}
	}
	for _, reason := range dataset.AllSkipReasons() {
		if v, _ := metricValue(t, env.reg, "cyclegan_loader_skipped_total", map[string]string{"reason": string(reason)}); v != 0 {
			t.Errorf("bundled dataset: skipped_total{reason=%s} %v, want 0", reason, v)
		}
	}
}

func TestLoaderBackpressure(t *testing.T) {
	// A 16×16 pair takes about 1.7 KB of storage, so the stream holds four or five.
	const streamBytes = 8 << 10
	const pairs = 25
	env := newTestEnv(t, pipeline.TopologyConfig{RawMaxBytes: streamBytes})
	cfg := DefaultConfig()
	cfg.Dataset = writeSmallDataset(t)
	cfg.LoadSize = 16
	cfg.MaxPairs = pairs
	st, err := New(cfg, env.deps())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	running := startStage(t, st)

	fullLabels := map[string]string{"stage": "loader", "reason": pipeline.RetryStreamFull}
	waitFor(t, 10*time.Second, "a publish retry on the full raw stream", func() bool {
		v, _ := metricValue(t, env.reg, "cyclegan_pipeline_publish_retries_total", fullLabels)
		return v > 0
	})
	if running.returned() {
		t.Fatalf("loader returned (%v) while the raw stream was full", running.err)
	}
	stored := streamPairs(t, env.js, env.topo.RawStream)
	if len(stored) == 0 || len(stored) >= pairs {
		t.Errorf("full raw stream holds %d pairs, want between 1 and %d", len(stored), pairs-1)
	}
	if v, _ := metricValue(t, env.reg, "cyclegan_loader_pairs_total", nil); v != float64(len(stored)) {
		t.Errorf("pairs_total %v while blocked, want the %d pairs stored", v, len(stored))
	}

	// Drain the work queue stream the way the augmenters do.
	cons, err := env.js.CreateOrUpdateConsumer(t.Context(), env.topo.RawStream, jetstream.ConsumerConfig{
		Durable:   pipeline.ConsumerAugmenter,
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	seen := map[uint64]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < pairs && time.Now().Before(deadline) {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for msg := range batch.Messages() {
			p, err := messages.DecodePair(msg.Data())
			if err != nil {
				t.Fatalf("decode drained pair: %v", err)
			}
			seen[p.Sequence]++
			if err := msg.DoubleAck(t.Context()); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
	if err := running.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for seq := range uint64(pairs) {
		if seen[seq] != 1 {
			t.Errorf("pair %d received %d times, want once", seq, seen[seq])
		}
	}
	if len(seen) != pairs {
		t.Errorf("received %d distinct pairs, want %d", len(seen), pairs)
	}
}

func TestLoaderStopsOnRunEnd(t *testing.T) {
	for _, status := range []pipeline.RunStatus{pipeline.StatusFinished, pipeline.StatusFailed} {
		t.Run(string(status)+" while running", func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{RawMaxBytes: 64 << 10})
			env.setRunState(t, pipeline.RunState{Status: pipeline.StatusRunning})
			cfg := DefaultConfig()
			cfg.Dataset = writeSmallDataset(t)
			cfg.LoadSize = 16
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			running := startStage(t, st)

			// Let the unbounded loader fill the stream and wait under backpressure.
			waitFor(t, 10*time.Second, "pairs published", func() bool {
				v, _ := metricValue(t, env.reg, "cyclegan_loader_pairs_total", nil)
				return v >= 5
			})
			env.setRunState(t, pipeline.RunState{Status: status, Step: 9})
			if err := running.wait(t, 10*time.Second); err != nil {
				t.Errorf("Run after the run ended: %v, want nil", err)
			}
		})

		t.Run(string(status)+" before start", func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			env.setRunState(t, pipeline.RunState{Status: status, Step: 9})
			cfg := DefaultConfig()
			cfg.Dataset = writeSmallDataset(t)
			cfg.LoadSize = 16
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			running := startStage(t, st)
			if err := running.wait(t, 10*time.Second); err != nil {
				t.Errorf("Run on an ended run: %v, want nil", err)
			}
			if got := streamPairs(t, env.js, env.topo.RawStream); len(got) != 0 {
				t.Errorf("loader of an ended run published %d pairs, want 0", len(got))
			}
		})
	}
}

func TestLoaderResume(t *testing.T) {
	tests := []struct {
		name      string
		state     *pipeline.RunState // nil: none stored
		batchSize int
		before    int // pairs a first loader published before the restart
		wantFirst uint64
	}{
		{"new run", nil, 1, 0, 0},
		{"trainer step times batch", &pipeline.RunState{Status: pipeline.StatusRunning, Step: 7}, 2, 0, 14},
		{"pairs waiting in stream", &pipeline.RunState{Status: pipeline.StatusRunning, Step: 3}, 1, 6, 6},
		{"trainer ahead of stream", &pipeline.RunState{Status: pipeline.StatusRunning, Step: 30}, 1, 6, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			cfg := DefaultConfig()
			cfg.Dataset = writeSmallDataset(t)
			cfg.LoadSize = 16
			cfg.BatchSize = tt.batchSize
			if tt.before > 0 {
				first := cfg
				first.MaxPairs = tt.before
				st, err := New(first, env.deps())
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := st.Run(t.Context()); err != nil {
					t.Fatalf("first Run: %v", err)
				}
			}
			if tt.state != nil {
				env.setRunState(t, *tt.state)
			}

			cfg.MaxPairs = 2
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := st.Run(t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := streamPairs(t, env.js, env.topo.RawStream)
			if len(got) != tt.before+2 {
				t.Fatalf("raw stream holds %d pairs, want %d", len(got), tt.before+2)
			}
			resumed := got[tt.before:]
			for i, m := range resumed {
				if want := tt.wantFirst + uint64(i); m.pair.Sequence != want {
					t.Errorf("resumed pair %d has sequence %d, want %d", i, m.pair.Sequence, want)
				}
			}
		})
	}
}

func TestLoaderResumeMatchesFreshSequence(t *testing.T) {
	// Pair 7 of a resumed loader carries the same images as pair 7 of a fresh one.
	env := newTestEnv(t, pipeline.TopologyConfig{})
	cfg := DefaultConfig()
	cfg.Dataset = writeSmallDataset(t)
	cfg.LoadSize = 16
	cfg.MaxPairs = 8
	st, err := New(cfg, env.deps())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := streamPairs(t, env.js, env.topo.RawStream)

	other := newTestEnv(t, pipeline.TopologyConfig{})
	other.setRunState(t, pipeline.RunState{Status: pipeline.StatusRunning, Step: 7})
	cfg.MaxPairs = 1
	st, err = New(cfg, other.deps())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	resumed := streamPairs(t, other.js, other.topo.RawStream)
	if len(resumed) != 1 || len(fresh) != 8 {
		t.Fatalf("got %d resumed and %d fresh pairs, want 1 and 8", len(resumed), len(fresh))
	}
	if resumed[0].pair.NameA != fresh[7].pair.NameA || resumed[0].pair.NameB != fresh[7].pair.NameB {
		t.Errorf("resumed pair 7 is (%s, %s), fresh pair 7 is (%s, %s)",
			resumed[0].pair.NameA, resumed[0].pair.NameB, fresh[7].pair.NameA, fresh[7].pair.NameB)
	}
}

func TestLoaderDatasetErrors(t *testing.T) {
	good := uniformPNG(t, color.NRGBA{5, 5, 5, 255})
	tests := []struct {
		name    string
		files   map[string][]byte
		wantErr error
		wantIn  string // text the error must contain
	}{
		{
			"empty domain",
			map[string][]byte{"trainA/a.png": good, "trainB/.DS_Store": []byte("x")},
			dataset.ErrEmptyDomain, "trainB",
		},
		{
			"missing domain",
			map[string][]byte{"trainA/a.png": good},
			nil, "trainB",
		},
		{
			"every image of a domain damaged",
			map[string][]byte{"trainA/a.png": good[:len(good)-20], "trainA/b.png": good[:len(good)-16], "trainB/b.png": good},
			ErrNoUsableImage, "trainA",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			cfg := DefaultConfig()
			cfg.Dataset = root
			cfg.LoadSize = 16
			cfg.MaxPairs = 3
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err = st.Run(ctx)
			if err == nil {
				t.Fatal("Run returned nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want one wrapping %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %s", err, tt.wantIn)
			}
		})
	}
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	env := newTestEnv(t, pipeline.TopologyConfig{})
	tests := []struct {
		name   string
		change func(*Config, *Deps)
		wantIn string
	}{
		{"zero load size", func(c *Config, _ *Deps) { c.LoadSize = 0 }, "--load-size"},
		{"load size over max payload", func(c *Config, _ *Deps) { c.LoadSize = 418 }, "max payload"},
		{"negative cache", func(c *Config, _ *Deps) { c.CacheBytes = -1 }, "--cache-bytes"},
		{"zero batch", func(c *Config, _ *Deps) { c.BatchSize = 0 }, "--batch-size"},
		{"negative max pairs", func(c *Config, _ *Deps) { c.MaxPairs = -1 }, "--max-pairs"},
		{"zero max pixels", func(c *Config, _ *Deps) { c.MaxPixels = 0 }, "--max-pixels"},
		{"missing dataset directory", func(c *Config, _ *Deps) { c.Dataset = "/nonexistent/dataset" }, "/nonexistent/dataset"},
		{"no topology", func(_ *Config, d *Deps) { d.Topology = nil }, "Topology"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			deps := env.deps()
			tt.change(&cfg, &deps)
			_, err := New(cfg, deps)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %s", err, tt.wantIn)
			}
		})
	}
}

func TestConfigRegister(t *testing.T) {
	env := map[string]string{"CYCLEGAN_LOAD_SIZE": "96", "CYCLEGAN_CACHE_BYTES": "1MiB"}
	f := pipeline.NewFlagSet("loader", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg := DefaultConfig()
	cfg.Register(f)
	if err := f.Parse([]string{"--seed", "5", "--max-pairs=12", "--dataset", "/data/horse2zebra"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := DefaultConfig()
	want.LoadSize, want.CacheBytes = 96, 1<<20
	want.Seed, want.MaxPairs, want.Dataset = 5, 12, "/data/horse2zebra"
	if cfg != want {
		t.Errorf("parsed %+v, want %+v", cfg, want)
	}
	var help strings.Builder
	f.PrintUsage(&help)
	for _, name := range []string{"CYCLEGAN_DATASET", "CYCLEGAN_LOAD_SIZE", "CYCLEGAN_MAX_PIXELS", "CYCLEGAN_CACHE_BYTES", "CYCLEGAN_SEED", "CYCLEGAN_BATCH_SIZE", "CYCLEGAN_MAX_PAIRS"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("help text lacks %s", name)
		}
	}
}

func TestWireName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".png" // 404 bytes
	tests := []struct {
		path, want string
	}{
		{"trainA/a.png", "a.png"},
		{"trainA/sub/deeper/b.png", "sub/deeper/b.png"},
		{"trainA/tab\there.png", "tab?here.png"},
		{"trainA/bad\xffbyte.png", "bad?byte.png"},
		{"trainA/" + long, strings.Repeat("é", 125) + ".png"},
	}
	for _, tt := range tests {
		got := wireName("trainA", tt.path)
		if got != tt.want {
			t.Errorf("wireName(%q) = %q, want %q", tt.path, got, tt.want)
		}
		if len(got) > messages.MaxNameLength {
			t.Errorf("wireName(%q) is %d bytes, over %d", tt.path, len(got), messages.MaxNameLength)
		}
	}
}
