package model

import (
	"flag"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/gocyclegan/cyclegan/datasets"
)

var realImages = flag.Bool("real-images", false, "run TestTrainRealImages: 300 steps at the cpu preset on the bundled emoji set (tens of minutes on 2 cores)")

// TestTrainRealImages trains the cpu preset for 300 steps on the bundled
// 64 px emoji, sampling A and B independently with a fixed seed, and checks
// that the cycle losses fall. Run it with
//
//	go test ./model -run TestTrainRealImages -real-images -timeout 60m -v
func TestTrainRealImages(t *testing.T) {
	if !*realImages {
		t.Skip("pass -real-images to train on the bundled dataset")
	}
	const steps, window = 300, 50
	data, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	imagesA := loadPNGFolder(t, data, "trainA")
	imagesB := loadPNGFolder(t, data, "trainB")

	cfg, _ := Preset(PresetCPU)
	cfg.DatasetSize = max(len(imagesA), len(imagesB))
	m := newTestModel(t, cfg, 1)
	rng := newTestRand(1)
	var early, late float64
	start := time.Now()
	for step := 1; step <= steps; step++ {
		a := imagesA[rng.IntN(len(imagesA))]
		b := imagesB[rng.IntN(len(imagesB))]
		result, err := m.Step(a, b)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		cycle := result.Losses.Get(LossCycleA) + result.Losses.Get(LossCycleB)
		switch {
		case step <= window:
			early += cycle / window
		case step > steps-window:
			late += cycle / window
		}
		if step%25 == 0 {
			t.Logf("step %d: %s, %.2f s/step so far", step, formatLosses(result.Losses), time.Since(start).Seconds()/float64(step))
		}
	}
	t.Logf("mean cycle_A+cycle_B: steps 1–%d %.4f, steps %d–%d %.4f", window, early, steps-window+1, steps, late)
	if !(late < early) {
		t.Errorf("cycle loss did not fall: %.4f in the first %d steps, %.4f in the last %d", early, window, late, window)
	}
}

func formatLosses(l Losses) string {
	parts := make([]string, len(LossNames))
	for i, name := range LossNames {
		parts[i] = fmt.Sprintf("%s %.3f", name, l[i])
	}
	return strings.Join(parts, " ")
}

// loadPNGFolder decodes every 64×64 PNG of a folder into CHW float32 in [-1, 1].
func loadPNGFolder(t *testing.T, fsys fs.FS, folder string) [][]float32 {
	t.Helper()
	entries, err := fs.ReadDir(fsys, folder)
	if err != nil {
		t.Fatal(err)
	}
	var images [][]float32
	for _, e := range entries {
		f, err := fsys.Open(path.Join(folder, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", e.Name(), err)
		}
		images = append(images, imageToCHW(img))
	}
	if len(images) == 0 {
		t.Fatalf("no images in %s", folder)
	}
	return images
}

func imageToCHW(img image.Image) []float32 {
	bounds := img.Bounds()
	h, w := bounds.Dy(), bounds.Dx()
	out := make([]float32, 3*h*w)
	for y := range h {
		for x := range w {
			r, g, b, _ := img.At(bounds.Min.X+x, bounds.Min.Y+y).RGBA() // 16-bit channels
			for c, v := range []uint32{r, g, b} {
				out[c*h*w+y*w+x] = float32(v)/65535*2 - 1
			}
		}
	}
	return out
}
