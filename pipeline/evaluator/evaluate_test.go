package evaluator

import (
	"context"
	"errors"
	"image"
	"math"
	"os"
	"testing"
	"time"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// tinyModelConfig is a model small enough to translate a test image in milliseconds.
func tinyModelConfig(t *testing.T) model.Config {
	t.Helper()
	cfg, err := model.Preset(model.PresetCPU)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LoadSize, cfg.CropSize = 36, 32
	cfg.NGF, cfg.NDF, cfg.Blocks = 8, 8, 2
	cfg.DatasetSize = 10
	return cfg
}

// checkpointBytes returns the serialised state of a fresh tiny model.
func checkpointBytes(t *testing.T, seed uint64) []byte {
	t.Helper()
	m, err := model.New(tinyModelConfig(t), seed)
	if err != nil {
		t.Fatalf("model.New: %v", err)
	}
	defer m.Close()
	data, err := m.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return data
}

// mirrorPad extends img to size×size by mirroring pixels across the last row and column,
// in pixel space, as an independent check of padReflect.
func mirrorPad(img *image.NRGBA, width, height int) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, width, height))
	mirror := func(i, n int) int {
		if i < n {
			return i
		}
		return 2*(n-1) - i
	}
	for y := range height {
		for x := range width {
			out.SetNRGBA(x, y, img.NRGBAAt(mirror(x, b.Dx()), mirror(y, b.Dy())))
		}
	}
	return out
}

// directCycle translates img with the generator of direction and back, the way a reader
// of the definitions would: pad to a multiple of 4, translate, translate the output back,
// crop both to the stored size and map to [0, 1].
func directCycle(t *testing.T, tr *model.Translator, direction model.Direction, img *image.NRGBA) (fake, rec Image) {
	t.Helper()
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	sideW, sideH := (w+3)/4*4, (h+3)/4*4
	padded := mirrorPad(img, sideW, sideH)
	hwc, err := messages.AppendHWCFromImage(nil, padded, image.White)
	if err != nil {
		t.Fatal(err)
	}
	in, err := messages.AppendFloat32CHW(nil, hwc, sideH, sideW)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.Translate(direction, in, sideH, sideW)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	back, err := tr.Translate(1-direction, out, sideH, sideW)
	if err != nil {
		t.Fatalf("Translate back: %v", err)
	}
	crop := func(chw []float32) Image {
		im := NewImage(w, h)
		for c := range 3 {
			for y := range h {
				for x := range w {
					im.Pix[(c*h+y)*w+x] = (chw[(c*sideH+y)*sideW+x] + 1) / 2
				}
			}
		}
		return im
	}
	return crop(out), crop(back)
}

func TestEvaluateMatchesDirectComputation(t *testing.T) {
	d := makeTestDataset(t)
	set, err := LoadTestSet(t.Context(), os.DirFS(d.dir), TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		t.Fatalf("LoadTestSet: %v", err)
	}
	tr, err := model.LoadTranslator(checkpointBytes(t, 3))
	if err != nil {
		t.Fatalf("LoadTranslator: %v", err)
	}
	defer tr.Close()

	const samples = 2
	ev, err := Evaluate(t.Context(), tr, set, samples)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}

	// Direct computation from the images in memory, with the definitions.
	fakes := map[string]Image{}
	cycle := func(paths []string, direction model.Direction) float64 {
		var sum float64
		for _, p := range paths {
			fake, rec := directCycle(t, tr, direction, d.images[p])
			fakes[p] = fake
			diff, err := meanAbsDiff(rec, FromImage(d.images[p]))
			if err != nil {
				t.Fatal(err)
			}
			sum += diff
		}
		return sum / float64(len(paths))
	}
	var want Figures
	want.CycleL1AB = cycle(d.usedA, model.AtoB)
	want.CycleL1BA = cycle(d.usedB, model.BtoA)
	var fakeBOfPairs, realBOfPairs, fakeAOfPairs, realAOfPairs []Image
	for _, p := range d.pairs {
		fakeBOfPairs = append(fakeBOfPairs, fakes[p[0]])
		realBOfPairs = append(realBOfPairs, FromImage(d.images[p[1]]))
		fakeAOfPairs = append(fakeAOfPairs, fakes[p[1]])
		realAOfPairs = append(realAOfPairs, FromImage(d.images[p[0]]))
	}
	want.L1AB, _ = PairedL1(fakeBOfPairs, realBOfPairs)
	want.L1BA, _ = PairedL1(fakeAOfPairs, realAOfPairs)
	var fakeB, fakeA []Image
	for _, p := range d.usedA {
		fakeB = append(fakeB, fakes[p])
	}
	for _, p := range d.usedB {
		fakeA = append(fakeA, fakes[p])
	}
	want.SWDAB, _ = SWD(fakeB, d.set(d.usedB), SWDOptions{})
	want.SWDBA, _ = SWD(fakeA, d.set(d.usedA), SWDOptions{})

	figures := []struct {
		name      string
		got, want float64
	}{
		{"l1_AB", ev.Figures.L1AB, want.L1AB},
		{"l1_BA", ev.Figures.L1BA, want.L1BA},
		{"cycle_l1_AB", ev.Figures.CycleL1AB, want.CycleL1AB},
		{"cycle_l1_BA", ev.Figures.CycleL1BA, want.CycleL1BA},
		{"swd_AB", ev.Figures.SWDAB, want.SWDAB},
		{"swd_BA", ev.Figures.SWDBA, want.SWDBA},
	}
	for _, f := range figures {
		if math.IsNaN(f.got) || math.IsInf(f.got, 0) || f.got < 0 {
			t.Errorf("%s = %v, want a finite figure ≥ 0", f.name, f.got)
		}
		if math.Abs(f.got-f.want) > 1e-9*max(1, math.Abs(f.want)) {
			t.Errorf("%s = %v, direct computation gives %v", f.name, f.got, f.want)
		}
	}

	if len(ev.SamplesAB) != samples || len(ev.SamplesBA) != samples {
		t.Fatalf("sample rows %d and %d, want %d each", len(ev.SamplesAB), len(ev.SamplesBA), samples)
	}
	// The first samples are the first images by sorted name: odd.png (30×30) in both.
	if got := ev.SamplesAB[0].Fake.Bounds().Size(); got != image.Pt(30, 30) {
		t.Errorf("first A→B sample is %v, want 30×30 like testA/odd.png", got)
	}
}

func TestEvaluateStopsWhenContextEnds(t *testing.T) {
	d := makeTestDataset(t)
	set, err := LoadTestSet(t.Context(), os.DirFS(d.dir), TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		t.Fatalf("LoadTestSet: %v", err)
	}
	tr, err := model.LoadTranslator(checkpointBytes(t, 3))
	if err != nil {
		t.Fatalf("LoadTranslator: %v", err)
	}
	defer tr.Close()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Evaluate(ctx, tr, set, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate with an ended context: error %v, want context.Canceled", err)
	}
}

// BenchmarkEvaluateBundledCPUPreset times one evaluation of a fresh cpu-preset model
// (ngf 32, 6 residual blocks) on the bundled test set: 153 images of 64×64 per domain,
// each translated and translated back, then the figures. Run it with -benchtime=1x; it
// reports seconds per evaluation as s/eval.
func BenchmarkEvaluateBundledCPUPreset(b *testing.B) {
	fsys, err := datasets.Bundled()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	set, err := LoadTestSet(b.Context(), fsys, TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("test set of %d + %d images loaded with baselines in %.2fs", len(set.A), len(set.B), time.Since(start).Seconds())

	cfg, err := model.Preset(model.PresetCPU)
	if err != nil {
		b.Fatal(err)
	}
	cfg.DatasetSize = 1483
	m, err := model.New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	data, err := m.Checkpoint()
	m.Close()
	if err != nil {
		b.Fatal(err)
	}
	tr, err := model.LoadTranslator(data)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()

	b.ResetTimer()
	start = time.Now()
	for b.Loop() {
		if _, err := Evaluate(b.Context(), tr, set, 6); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/eval")
}
