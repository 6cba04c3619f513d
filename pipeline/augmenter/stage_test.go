package augmenter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// rawPair returns a raw pair of size×size images whose samples encode their position,
// so that a crop's origin can be read back from its pixels.
func rawPair(run string, sequence uint64, height, width int) *messages.Pair {
	a := make([]uint8, height*width*3)
	b := make([]uint8, height*width*3)
	for y := range height {
		for x := range width {
			i := (y*width + x) * 3
			a[i], a[i+1], a[i+2] = uint8(x), uint8(y), 1
			b[i], b[i+1], b[i+2] = uint8(x), uint8(y), 2
		}
	}
	return &messages.Pair{
		Kind: messages.KindRaw, Run: run, Sequence: sequence, Epoch: uint32(sequence / 10),
		NameA: fmt.Sprintf("a%d.png", sequence), NameB: fmt.Sprintf("b%d.png", sequence),
		Height: height, Width: width, LoadHeight: height, LoadWidth: width,
		A: a, B: b,
	}
}

func TestDrawTransformsReproducible(t *testing.T) {
	const loadH, loadW, crop = 72, 80, 64
	flipped, differentAB := 0, 0
	for seq := range uint64(200) {
		a1, b1 := DrawTransforms(7, seq, loadH, loadW, crop, true)
		a2, b2 := DrawTransforms(7, seq, loadH, loadW, crop, true)
		if a1 != a2 || b1 != b2 {
			t.Fatalf("sequence %d: draws (%v, %v) and (%v, %v) differ for the same seed", seq, a1, b1, a2, b2)
		}
		for _, tr := range []messages.Transform{a1, b1} {
			if tr.CropX < 0 || tr.CropX > loadW-crop || tr.CropY < 0 || tr.CropY > loadH-crop {
				t.Fatalf("sequence %d: crop offset (%d, %d) outside [0, %d]×[0, %d]", seq, tr.CropX, tr.CropY, loadW-crop, loadH-crop)
			}
			if tr.Flipped {
				flipped++
			}
		}
		if a1 != b1 {
			differentAB++
		}

		a3, b3 := DrawTransforms(7, seq, loadH, loadW, crop, false)
		if a3.Flipped || b3.Flipped {
			t.Errorf("sequence %d: flipped with flips off", seq)
		}
		if a3.CropX != a1.CropX || a3.CropY != a1.CropY || b3.CropX != b1.CropX || b3.CropY != b1.CropY {
			t.Errorf("sequence %d: turning flips off moved the crops", seq)
		}
	}
	// 400 fair coin flips: 140 to 260 is more than 5 standard deviations from 200.
	if flipped < 140 || flipped > 260 {
		t.Errorf("%d of 400 images flipped, want about half", flipped)
	}
	if differentAB < 190 {
		t.Errorf("A and B transforms differ in %d of 200 pairs, want nearly all", differentAB)
	}

	var seed7, seed8 []messages.Transform
	for seq := range uint64(20) {
		a, _ := DrawTransforms(7, seq, loadH, loadW, crop, true)
		b, _ := DrawTransforms(8, seq, loadH, loadW, crop, true)
		seed7, seed8 = append(seed7, a), append(seed8, b)
	}
	if slices.Equal(seed7, seed8) {
		t.Errorf("seeds 7 and 8 drew the same transforms")
	}
}

func TestDrawTransformsFullCrop(t *testing.T) {
	a, b := DrawTransforms(1, 5, 64, 64, 64, true)
	if a.CropX != 0 || a.CropY != 0 || b.CropX != 0 || b.CropY != 0 {
		t.Errorf("crop of the whole image at offsets %v and %v, want 0", a, b)
	}
}

func TestAugmentPixels(t *testing.T) {
	const height, width, crop = 20, 24, 12
	for seq := range uint64(16) {
		raw := rawPair("augtest", seq, height, width)
		train, err := Augment(raw, crop, 3, true)
		if err != nil {
			t.Fatalf("Augment: %v", err)
		}
		if err := train.Validate(); err != nil {
			t.Fatalf("train pair invalid: %v", err)
		}
		if train.Kind != messages.KindTrain || train.Sequence != seq || train.Epoch != raw.Epoch || train.Run != "augtest" {
			t.Errorf("header kind %v sequence %d epoch %d run %q, want train, %d, %d, augtest",
				train.Kind, train.Sequence, train.Epoch, train.Run, seq, raw.Epoch)
		}
		if train.NameA != raw.NameA || train.NameB != raw.NameB {
			t.Errorf("names %q, %q, want %q, %q", train.NameA, train.NameB, raw.NameA, raw.NameB)
		}
		if train.Height != crop || train.Width != crop || train.LoadHeight != height || train.LoadWidth != width {
			t.Errorf("size %d×%d load %d×%d, want %d×%d load %d×%d",
				train.Height, train.Width, train.LoadHeight, train.LoadWidth, crop, crop, height, width)
		}
		ta, tb := DrawTransforms(3, seq, height, width, crop, true)
		if train.TransformA != ta || train.TransformB != tb {
			t.Errorf("transforms %v, %v, want %v, %v", train.TransformA, train.TransformB, ta, tb)
		}
		checkCrop(t, "A", train.A, crop, ta)
		checkCrop(t, "B", train.B, crop, tb)
	}
}

// checkCrop checks that pix, cropped from a rawPair image, starts at tr's offset and is
// mirrored when tr.Flipped is set. Pixel (x, y) must come from source column CropX + x'
// and row CropY + y, where x' is x mirrored within the crop.
func checkCrop(t *testing.T, image string, pix []uint8, crop int, tr messages.Transform) {
	t.Helper()
	for y := range crop {
		for x := range crop {
			srcX := x
			if tr.Flipped {
				srcX = crop - 1 - x
			}
			i := (y*crop + x) * 3
			if int(pix[i]) != tr.CropX+srcX || int(pix[i+1]) != tr.CropY+y {
				t.Fatalf("image %s with %+v: pixel (%d, %d) comes from (%d, %d), want (%d, %d)",
					image, tr, x, y, pix[i], pix[i+1], tr.CropX+srcX, tr.CropY+y)
			}
		}
	}
}

func TestAugmentRejects(t *testing.T) {
	train, err := Augment(rawPair("augtest", 1, 16, 16), 8, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pair    *messages.Pair
		crop    int
		wantErr error
		wantIn  []string
	}{
		{"train pair", train, 8, ErrNotRawPair, []string{"pair 1"}},
		{"smaller than crop", rawPair("augtest", 2, 16, 20), 24, ErrPairTooSmall, []string{"16×20", "24×24"}},
		{"narrower than crop", rawPair("augtest", 3, 30, 20), 24, ErrPairTooSmall, []string{"30×20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Augment(tt.pair, tt.crop, 1, true)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// publishRaw stores each payload in the raw stream under id "raw-<i>".
func publishRaw(t *testing.T, env *testEnv, payloads ...[]byte) {
	t.Helper()
	for i, p := range payloads {
		_, err := env.js.Publish(t.Context(), env.topo.RawSubject, p, jetstream.WithMsgID(fmt.Sprintf("raw-%d", i)))
		if err != nil {
			t.Fatalf("publish raw message %d: %v", i, err)
		}
	}
}

func encode(t *testing.T, p *messages.Pair) []byte {
	t.Helper()
	b, err := messages.EncodePair(p)
	if err != nil {
		t.Fatalf("encode pair: %v", err)
	}
	return b
}

// streamLen returns the number of messages stored in stream.
func streamLen(t *testing.T, env *testEnv, stream string) uint64 {
	t.Helper()
	st, err := env.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("look up stream %s: %v", stream, err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

func TestTwoAugmentersProcessEachPairOnce(t *testing.T) {
	const pairs, size, crop = 40, 16, 12
	env := newTestEnv(t, pipeline.TopologyConfig{})
	var raws []*messages.Pair
	var payloads [][]byte
	for seq := range uint64(pairs) {
		raws = append(raws, rawPair("augtest", seq, size, size))
		payloads = append(payloads, encode(t, raws[seq]))
	}

	cfg := DefaultConfig()
	cfg.CropSize = crop
	cfg.Seed = 11
	// Each augmenter reports to a registry of its own, as separate processes do.
	var running []*runningStage
	var registries []*prometheus.Registry
	for i := range 2 {
		deps := env.deps()
		deps.Logger = env.log.With("augmenter", i)
		deps.Registerer = prometheus.NewRegistry()
		registries = append(registries, deps.Registerer.(*prometheus.Registry))
		pipelineMetrics, err := pipeline.NewMetrics(deps.Registerer)
		if err != nil {
			t.Fatal(err)
		}
		deps.Metrics = pipelineMetrics
		st, err := New(cfg, deps)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		running = append(running, startStage(t, st))
	}
	// Publish once both wait on the shared consumer, so that the server hands pairs to
	// both rather than all to the first one bound.
	waitFor(t, 10*time.Second, "both augmenters pulling", func() bool {
		cons, err := env.js.Consumer(t.Context(), env.topo.RawStream, pipeline.ConsumerAugmenter)
		if err != nil {
			return false
		}
		info, err := cons.Info(t.Context())
		return err == nil && info.NumWaiting >= 2
	})
	publishRaw(t, env, payloads...)

	waitFor(t, 30*time.Second, "every raw pair acked", func() bool {
		return streamLen(t, env, env.topo.RawStream) == 0 && streamLen(t, env, env.topo.TrainStream) >= pairs
	})
	got := streamPairs(t, env.js, env.topo.TrainStream)
	seen := map[uint64]int{}
	for _, m := range got {
		seq := m.pair.Sequence
		seen[seq]++
		if m.id != TrainMessageID("augtest", seq) {
			t.Errorf("train pair %d has message id %q, want %q", seq, m.id, TrainMessageID("augtest", seq))
		}
		if seq >= pairs {
			t.Errorf("train pair with unknown sequence %d", seq)
			continue
		}
		want, err := Augment(raws[seq], crop, 11, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(encode(t, m.pair), encode(t, want)) {
			t.Errorf("train pair %d differs from Augment of its raw pair with the same seed", seq)
		}
	}
	for seq := range uint64(pairs) {
		if seen[seq] != 1 {
			t.Errorf("pair %d in the train stream %d times, want once", seq, seen[seq])
		}
	}
	var total float64
	for i, reg := range registries {
		v, _ := metricValue(t, reg, "cyclegan_augmenter_pairs_total", map[string]string{"run": "augtest"})
		if v == 0 {
			t.Errorf("augmenter %d augmented no pair, want a share", i)
		}
		total += v
	}
	if total != pairs {
		t.Errorf("pairs_total of both augmenters adds up to %v, want %d", total, pairs)
	}
	for i, r := range running {
		if r.returned() {
			t.Errorf("augmenter %d returned early: %v", i, r.err)
		}
	}
}

func TestAugmenterPoisonMessages(t *testing.T) {
	const crop = 12
	env := newTestEnv(t, pipeline.TopologyConfig{})
	train, err := Augment(rawPair("augtest", 1, 16, 16), crop, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, env,
		[]byte("not a pair"),                     // malformed
		encode(t, rawPair("augtest", 2, 8, 8)),   // smaller than the crop
		encode(t, train),                         // a train pair on the raw stream
		encode(t, rawPair("other", 3, 16, 16)),   // another run's pair
		encode(t, rawPair("augtest", 4, 16, 16)), // good
	)

	cfg := DefaultConfig()
	cfg.CropSize = crop
	st, err := New(cfg, env.deps())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	running := startStage(t, st)

	waitFor(t, 30*time.Second, "raw stream drained", func() bool {
		return streamLen(t, env, env.topo.RawStream) == 0
	})
	got := streamPairs(t, env.js, env.topo.TrainStream)
	if len(got) != 1 || got[0].pair.Sequence != 4 {
		t.Fatalf("train stream holds %d pairs, want only pair 4", len(got))
	}
	for _, reason := range skipReasons {
		v, ok := metricValue(t, env.reg, "cyclegan_augmenter_skipped_total", map[string]string{"run": "augtest", "reason": reason})
		if !ok || v != 1 {
			t.Errorf("skipped_total{reason=%s} %v (present %v), want 1", reason, v, ok)
		}
	}
	if v, _ := metricValue(t, env.reg, "cyclegan_pipeline_messages_terminated_total", map[string]string{"stage": "augmenter"}); v != 4 {
		t.Errorf("messages terminated %v, want 4", v)
	}
	if v, _ := metricValue(t, env.reg, "cyclegan_augmenter_pairs_total", nil); v != 1 {
		t.Errorf("pairs_total %v, want 1", v)
	}
	if running.returned() {
		t.Errorf("augmenter returned after poison messages: %v", running.err)
	}
}

func TestAugmenterStopsOnRunEnd(t *testing.T) {
	for _, status := range []pipeline.RunStatus{pipeline.StatusFinished, pipeline.StatusFailed} {
		t.Run(string(status)+" while running", func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			env.setRunState(t, pipeline.RunState{Status: pipeline.StatusRunning})
			cfg := DefaultConfig()
			cfg.CropSize = 8
			st, err := New(cfg, env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			running := startStage(t, st)
			publishRaw(t, env, encode(t, rawPair("augtest", 0, 16, 16)))
			waitFor(t, 10*time.Second, "one pair augmented", func() bool {
				v, _ := metricValue(t, env.reg, "cyclegan_augmenter_pairs_total", nil)
				return v == 1
			})

			env.setRunState(t, pipeline.RunState{Status: status, Step: 3})
			if err := running.wait(t, 10*time.Second); err != nil {
				t.Errorf("Run after the run ended: %v, want nil", err)
			}
		})

		t.Run(string(status)+" before start", func(t *testing.T) {
			env := newTestEnv(t, pipeline.TopologyConfig{})
			env.setRunState(t, pipeline.RunState{Status: status})
			publishRaw(t, env, encode(t, rawPair("augtest", 0, 16, 16)))
			st, err := New(DefaultConfig(), env.deps())
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			running := startStage(t, st)
			if err := running.wait(t, 10*time.Second); err != nil {
				t.Errorf("Run on an ended run: %v, want nil", err)
			}
			if n := streamLen(t, env, env.topo.RawStream); n != 1 {
				t.Errorf("raw stream holds %d messages after the augmenter of an ended run returned, want 1 untouched", n)
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
		{"zero crop", func(c *Config, _ *Deps) { c.CropSize = 0 }, "--crop-size"},
		{"crop over max side", func(c *Config, _ *Deps) { c.CropSize = messages.MaxImageSide + 1 }, "--crop-size"},
		{"negative seed", func(c *Config, _ *Deps) { c.Seed = -1 }, "--seed"},
		{"zero concurrency", func(c *Config, _ *Deps) { c.Concurrency = 0 }, "--concurrency"},
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
	env := map[string]string{"CYCLEGAN_CROP_SIZE": "256", "CYCLEGAN_NO_FLIP": "true"}
	f := pipeline.NewFlagSet("augmenter", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg := DefaultConfig()
	cfg.Register(f)
	if err := f.Parse([]string{"--seed", "9", "--concurrency=3"}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Config{CropSize: 256, NoFlip: true, Seed: 9, Concurrency: 3}
	if cfg != want {
		t.Errorf("parsed %+v, want %+v", cfg, want)
	}
	var help strings.Builder
	f.PrintUsage(&help)
	for _, name := range []string{"CYCLEGAN_CROP_SIZE", "CYCLEGAN_NO_FLIP", "CYCLEGAN_SEED", "CYCLEGAN_CONCURRENCY"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("help text lacks %s", name)
		}
	}
}
