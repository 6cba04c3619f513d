package evaluator

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// testPattern returns an opaque image of random colour blocks, different for each seed.
func testPattern(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	const block = 4
	for by := 0; by < h; by += block {
		for bx := 0; bx < w; bx += block {
			c := color.NRGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 0xff}
			for y := by; y < min(by+block, h); y++ {
				for x := bx; x < min(bx+block, w); x++ {
					img.SetNRGBA(x, y, c)
				}
			}
		}
	}
	return img
}

func writePNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// testDataset is a dataset folder made by makeTestDataset and the images it holds.
type testDataset struct {
	dir    string
	images map[string]*image.NRGBA // by path within the dataset, usable files only
	usedA  []string                // usable files of testA, sorted
	usedB  []string
	pairs  [][2]string // same-name files of equal size, A path then B path
}

// makeTestDataset writes a small test set. It has the same-name pairs p1 and p2 (32×32)
// and odd (30×30, not a multiple of 4), a non-square image and one more image only in A,
// and one image only in B. The files to skip are an image smaller than the generators take
// in B, a text file named .png and a .DS_Store.
func makeTestDataset(t *testing.T) testDataset {
	t.Helper()
	d := testDataset{dir: t.TempDir(), images: map[string]*image.NRGBA{}}
	add := func(rel string, w, h int, seed uint64, usable bool) {
		img := testPattern(w, h, seed)
		writePNG(t, filepath.Join(d.dir, filepath.FromSlash(rel)), img)
		if usable {
			d.images[rel] = img
		}
	}
	add("testA/p1.png", 32, 32, 1, true)
	add("testA/p2.png", 32, 32, 2, true)
	add("testA/odd.png", 30, 30, 3, true)
	add("testA/only_a.png", 32, 32, 4, true)
	add("testA/wide.png", 40, 32, 5, true)
	add("testB/p1.png", 32, 32, 11, true)
	add("testB/p2.png", 32, 32, 12, true)
	add("testB/odd.png", 30, 30, 13, true)
	add("testB/only_b.png", 32, 32, 14, true)
	add("testB/tiny.png", 4, 4, 15, false)
	if err := os.WriteFile(filepath.Join(d.dir, "testB", "notes.png"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "testA", ".DS_Store"), []byte{0, 0, 0, 1}, 0o644); err != nil {
		t.Fatal(err)
	}

	d.usedA = []string{"testA/odd.png", "testA/only_a.png", "testA/p1.png", "testA/p2.png", "testA/wide.png"}
	d.usedB = []string{"testB/odd.png", "testB/only_b.png", "testB/p1.png", "testB/p2.png"}
	d.pairs = [][2]string{{"testA/odd.png", "testB/odd.png"}, {"testA/p1.png", "testB/p1.png"}, {"testA/p2.png", "testB/p2.png"}}
	return d
}

// set returns the images of paths in [0, 1].
func (d testDataset) set(paths []string) []Image {
	out := make([]Image, len(paths))
	for i, p := range paths {
		out[i] = FromImage(d.images[p])
	}
	return out
}

// baselines computes the paired L1 and SWD baselines from the images in memory.
func (d testDataset) baselines(t *testing.T) (l1, swd float64) {
	t.Helper()
	var as, bs []Image
	for _, p := range d.pairs {
		as = append(as, FromImage(d.images[p[0]]))
		bs = append(bs, FromImage(d.images[p[1]]))
	}
	l1, err := PairedL1(as, bs)
	if err != nil {
		t.Fatal(err)
	}
	swd, err = SWD(d.set(d.usedA), d.set(d.usedB), SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l1, swd
}

func TestLoadTestSetFiltersAndPairs(t *testing.T) {
	d := makeTestDataset(t)
	set, err := LoadTestSet(t.Context(), os.DirFS(d.dir), TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		t.Fatalf("LoadTestSet: %v", err)
	}

	if got := testNames(set.A); !slices.Equal(got, d.usedA) {
		t.Errorf("A = %q, want %q", got, d.usedA)
	}
	if got := testNames(set.B); !slices.Equal(got, d.usedB) {
		t.Errorf("B = %q, want %q", got, d.usedB)
	}
	var pairs [][2]string
	for _, p := range set.Pairs {
		pairs = append(pairs, [2]string{set.A[p[0]].Name, set.B[p[1]].Name})
	}
	if !slices.Equal(pairs, d.pairs) {
		t.Errorf("pairs = %q, want %q", pairs, d.pairs)
	}

	reasons := map[string]string{}
	for _, s := range set.Skipped {
		reasons[s.Path] = s.Reason
	}
	wantReasons := map[string]string{
		"testA/.DS_Store": string(dataset.ReasonHidden),
		"testB/tiny.png":  SkipTooSmall,
		"testB/notes.png": string(dataset.ReasonSignature),
	}
	for path, want := range wantReasons {
		if reasons[path] != want {
			t.Errorf("skip reason of %s = %q, want %q", path, reasons[path], want)
		}
	}
	if len(set.Skipped) != len(wantReasons) {
		t.Errorf("skipped %v, want %d entries", set.Skipped, len(wantReasons))
	}

	wantL1, wantSWD := d.baselines(t)
	if set.L1Baseline != wantL1 {
		t.Errorf("L1 baseline = %v, want %v", set.L1Baseline, wantL1)
	}
	if set.SWDBaseline != wantSWD {
		t.Errorf("SWD baseline = %v, want %v", set.SWDBaseline, wantSWD)
	}
}

func TestLoadTestSetStoredSizeAndPadding(t *testing.T) {
	d := makeTestDataset(t)
	set, err := LoadTestSet(t.Context(), os.DirFS(d.dir), TestDirA, TestDirB, dataset.Limits{})
	if err != nil {
		t.Fatalf("LoadTestSet: %v", err)
	}
	for _, im := range set.A {
		src := d.images[im.Name]
		if im.Image.Width != src.Bounds().Dx() || im.Image.Height != src.Bounds().Dy() {
			t.Errorf("%s loaded at %d×%d, stored %v", im.Name, im.Image.Width, im.Image.Height, src.Bounds().Size())
		}
		if im.inputWidth%4 != 0 || im.inputHeight%4 != 0 || im.inputWidth-im.Image.Width > 3 {
			t.Errorf("%s padded to %d×%d", im.Name, im.inputWidth, im.inputHeight)
		}
		if len(im.input) != 3*im.inputWidth*im.inputHeight {
			t.Errorf("%s input has %d values for %d×%d", im.Name, len(im.input), im.inputWidth, im.inputHeight)
		}
		// The input's top-left part is the image scaled to [−1, 1].
		plane, inPlane := im.Image.Width*im.Image.Height, im.inputWidth*im.inputHeight
		for c := range 3 {
			for y := range im.Image.Height {
				for x := range im.Image.Width {
					want := 2*im.Image.Pix[c*plane+y*im.Image.Width+x] - 1
					got := im.input[c*inPlane+y*im.inputWidth+x]
					if math.Abs(float64(got-want)) > 1e-6 {
						t.Fatalf("%s input channel %d at (%d, %d) = %v, want %v", im.Name, c, x, y, got, want)
					}
				}
			}
		}
	}
}

func TestPadReflect(t *testing.T) {
	// A 5×6 image whose value at (x, y) in channel c is 100c + 5y + x, padded to 8×8.
	const w, h, toW, toH = 5, 6, 8, 8
	src := make([]float32, 3*w*h)
	for c := range 3 {
		for i := range w * h {
			src[c*w*h+i] = float32(100*c + i)
		}
	}
	got := padReflect(src, w, h, toW, toH)
	if len(got) != 3*toW*toH {
		t.Fatalf("padded length %d, want %d", len(got), 3*toW*toH)
	}
	rows := []struct {
		c, y int
		want []float32
	}{
		{0, 0, []float32{0, 1, 2, 3, 4, 3, 2, 1}},
		{0, 5, []float32{25, 26, 27, 28, 29, 28, 27, 26}},
		{0, 6, []float32{20, 21, 22, 23, 24, 23, 22, 21}}, // mirrors row 4
		{0, 7, []float32{15, 16, 17, 18, 19, 18, 17, 16}}, // mirrors row 3
		{2, 7, []float32{215, 216, 217, 218, 219, 218, 217, 216}},
	}
	for _, r := range rows {
		start := (r.c*toH + r.y) * toW
		if row := got[start : start+toW]; !slices.Equal(row, r.want) {
			t.Errorf("channel %d row %d = %v, want %v", r.c, r.y, row, r.want)
		}
	}

	if same := padReflect(src, w, h, w, h); &same[0] != &src[0] {
		t.Error("padReflect copied an image that needs no padding")
	}
}

func TestCropUnitRejectsNonFinite(t *testing.T) {
	chw := make([]float32, 3*8*8)
	if _, err := cropUnit(chw, 8, 8, 8, 8); err != nil {
		t.Fatalf("cropUnit of zeros: %v", err)
	}
	chw[3*8+5] = float32(math.NaN())
	if _, err := cropUnit(chw, 8, 8, 8, 8); err == nil {
		t.Error("cropUnit accepted NaN")
	}
	// A NaN in the padding is cut away with it.
	if _, err := cropUnit(chw, 8, 8, 4, 3); err != nil {
		t.Errorf("cropUnit with NaN outside the crop: %v", err)
	}
}
