package evaluator

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/gocyclegan/cyclegan/datasets"
)

// loadBundledFolder decodes every image of a folder of the bundled dataset, in file
// name order, and returns the images with their names.
func loadBundledFolder(t *testing.T, dir string) ([]Image, []string) {
	t.Helper()
	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	var (
		images []Image
		names  []string
	)
	for _, e := range entries {
		name := path.Join(dir, e.Name())
		f, err := fsys.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", name, err)
		}
		images = append(images, FromImage(img))
		names = append(names, name)
	}
	return images, names
}

func uniformImage(w, h int, r, g, b float32) Image {
	im := NewImage(w, h)
	plane := w * h
	for i := range plane {
		im.Pix[i], im.Pix[plane+i], im.Pix[2*plane+i] = r, g, b
	}
	return im
}

// blobImages draws n w×h images of random soft-edged discs on a light background, with
// every channel shifted by shift and clamped to [0, 1].
func blobImages(n, w, h int, seed uint64, shift float32) []Image {
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([]Image, n)
	for k := range out {
		im := NewImage(w, h)
		plane := w * h
		cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
		radius := 4 + rng.Float64()*float64(w)/3
		col := [3]float64{rng.Float64(), rng.Float64(), rng.Float64()}
		for y := range h {
			for x := range w {
				d := math.Hypot(float64(x)-cx, float64(y)-cy)
				inside := 1 / (1 + math.Exp((d-radius)/1.5))
				for c := range 3 {
					v := float32(0.9*(1-inside)+col[c]*inside+0.03*rng.NormFloat64()) + shift
					im.Pix[c*plane+y*w+x] = min(max(v, 0), 1)
				}
			}
		}
		out[k] = im
	}
	return out
}

func cloneImages(images []Image) []Image {
	out := make([]Image, len(images))
	for i, im := range images {
		out[i] = Image{Width: im.Width, Height: im.Height, Pix: slices.Clone(im.Pix)}
	}
	return out
}

func TestFromImageLayoutAndAlpha(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	src.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 255})  // red at (1, 0)
	src.SetNRGBA(2, 1, color.NRGBA{0, 0, 255, 255})  // blue at (2, 1)
	src.SetNRGBA(0, 1, color.NRGBA{0, 0, 0, 0})      // transparent: white
	src.SetNRGBA(0, 0, color.NRGBA{0, 255, 0, 0x80}) // half-transparent green on white

	im := FromImage(src)
	if im.Width != 3 || im.Height != 2 || len(im.Pix) != 18 {
		t.Fatalf("image %d×%d with %d values, want 3×2 with 18", im.Width, im.Height, len(im.Pix))
	}
	at := func(c, x, y int) float32 { return im.Pix[(c*2+y)*3+x] }
	tests := []struct {
		name    string
		c, x, y int
		want    float32
	}{
		{"red R", 0, 1, 0, 1},
		{"red G", 1, 1, 0, 0},
		{"blue B", 2, 2, 1, 1},
		{"blue R", 0, 2, 1, 0},
		{"transparent R", 0, 0, 1, 1},
		{"transparent B", 2, 0, 1, 1},
		{"half green G", 1, 0, 0, 1},
		{"half green R", 0, 0, 0, float32(0x7f7f) / 0xffff},
	}
	for _, tt := range tests {
		if got := at(tt.c, tt.x, tt.y); math.Abs(float64(got-tt.want)) > 1e-6 {
			t.Errorf("%s: channel %d at (%d, %d) = %v, want %v", tt.name, tt.c, tt.x, tt.y, got, tt.want)
		}
	}
}

func TestImageNRGBARoundTrip(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
		if i%4 == 3 {
			src.Pix[i] = 0xff
		}
	}
	got := FromImage(src).NRGBA()
	if !slices.Equal(got.Pix, src.Pix) {
		t.Errorf("8-bit round trip changed pixels")
	}

	out := Image{Width: 1, Height: 1, Pix: []float32{-0.5, 1.7, 0.5}}.NRGBA()
	if want := []uint8{0, 255, 128, 255}; !slices.Equal(out.Pix, want) {
		t.Errorf("clamped pixel %v, want %v", out.Pix, want)
	}
}

func TestPairedL1(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []Image
		want   float64
	}{
		{"one pair", []Image{uniformImage(4, 4, 0.2, 0.2, 0.2)}, []Image{uniformImage(4, 4, 0.5, 0.5, 0.5)}, 0.3},
		{"sign ignored", []Image{uniformImage(2, 3, 0.9, 0.1, 0.5)}, []Image{uniformImage(2, 3, 0.5, 0.5, 0.5)}, (0.4 + 0.4) / 3},
		// A mean of per-image means weighs a 1×1 image like a 2×2 one: (0.1 + 0.3) / 2,
		// where a mean over all values would give 0.26.
		{"mean of means", []Image{uniformImage(1, 1, 0, 0, 0), uniformImage(2, 2, 0, 0, 0)},
			[]Image{uniformImage(1, 1, 0.1, 0.1, 0.1), uniformImage(2, 2, 0.3, 0.3, 0.3)}, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PairedL1(tt.xs, tt.ys)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("PairedL1 = %v, want %v", got, tt.want)
			}
			cyc, err := CycleL1(tt.xs, tt.ys)
			if err != nil || cyc != got {
				t.Errorf("CycleL1 = %v, %v, want %v", cyc, err, got)
			}
		})
	}
}

func TestPairedL1Errors(t *testing.T) {
	a := uniformImage(4, 4, 0, 0, 0)
	tests := []struct {
		name   string
		xs, ys []Image
		want   error
	}{
		{"empty", nil, nil, ErrEmptySet},
		{"count", []Image{a, a}, []Image{a}, ErrSizeMismatch},
		{"size", []Image{a}, []Image{uniformImage(4, 5, 0, 0, 0)}, ErrSizeMismatch},
		{"short pixels", []Image{{Width: 4, Height: 4, Pix: make([]float32, 5)}}, []Image{a}, ErrSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := PairedL1(tt.xs, tt.ys); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMatchNames(t *testing.T) {
	a := []string{"testA/x.png", "testA/only-a.png", "testA/sub/y.jpg", "testA/z.png"}
	b := []string{"testB/z.jpg", "testB/y.png", "testB/x.png", "testB/only-b.png"}
	want := [][2]int{{0, 2}, {2, 1}, {3, 0}}
	if got := MatchNames(a, b); !slices.Equal(got, want) {
		t.Errorf("MatchNames = %v, want %v", got, want)
	}
}

func TestSWDIdenticalSetsZero(t *testing.T) {
	x := blobImages(6, 24, 20, 1, 0)
	got, err := SWD(x, cloneImages(x), SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got != 0 {
		t.Errorf("SWD(X, X) = %v, want 0", got)
	}
}

func TestSWDSymmetric(t *testing.T) {
	x := blobImages(5, 24, 24, 1, 0)
	y := blobImages(8, 20, 28, 2, 0) // more images: exercises the subset of the larger set
	xy, err := SWD(x, y, SWDOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	yx, err := SWD(y, x, SWDOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if xy != yx {
		t.Errorf("SWD(X, Y) = %v, SWD(Y, X) = %v, want equal", xy, yx)
	}
	if xy <= 0 {
		t.Errorf("SWD(X, Y) = %v, want > 0 for different sets", xy)
	}
}

func TestSWDReproducible(t *testing.T) {
	x := blobImages(6, 24, 24, 1, 0)
	y := blobImages(6, 24, 24, 2, 0)
	first, err := SWD(x, y, SWDOptions{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	second, err := SWD(cloneImages(x), cloneImages(y), SWDOptions{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("rerun gave %v, first run %v", second, first)
	}
	other, err := SWD(x, y, SWDOptions{Seed: 10})
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Errorf("seeds 9 and 10 gave the same figure %v", first)
	}
}

func TestSWDShiftedColourLarger(t *testing.T) {
	x := blobImages(20, 32, 32, 1, 0)
	same := blobImages(20, 32, 32, 2, 0)
	shifted := blobImages(20, 32, 32, 3, -0.15)

	dSame, err := SWD(x, same, SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dShifted, err := SWD(x, shifted, SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SWD same distribution %.4f, shifted colour %.4f", dSame, dShifted)
	if dShifted < 2*dSame {
		t.Errorf("SWD to shifted set %v, want at least twice the same-distribution %v", dShifted, dSame)
	}
}

func TestSWDErrors(t *testing.T) {
	ok := []Image{uniformImage(8, 8, 0, 0, 0)}
	tests := []struct {
		name string
		x, y []Image
		want error
	}{
		{"empty first", nil, ok, ErrEmptySet},
		{"empty second", ok, nil, ErrEmptySet},
		{"too small", []Image{uniformImage(6, 8, 0, 0, 0)}, ok, ErrImageTooSmall},
		{"short pixels", ok, []Image{{Width: 8, Height: 8, Pix: make([]float32, 10)}}, ErrSizeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SWD(tt.x, tt.y, SWDOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBundledBaselines measures the do-nothing figures on the bundled test set. An
// independent implementation of the same definitions measured SWD(testA, testB) ≈ 0.081,
// SWD between same-domain image sets ≈ 0.07, and paired L1 ≈ 0.179.
func TestBundledBaselines(t *testing.T) {
	testA, namesA := loadBundledFolder(t, "testA")
	testB, namesB := loadBundledFolder(t, "testB")

	swd, err := SWD(testA, testB, SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Same domain, other images: the train folders, subsampled to the test set's
	// descriptor count.
	trainA, _ := loadBundledFolder(t, "trainA")
	trainB, _ := loadBundledFolder(t, "trainB")
	sameA, err := SWD(testA, trainA, SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameB, err := SWD(testB, trainB, SWDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SWD(testA, testB) = %.4f; same domain: SWD(testA, trainA) = %.4f, SWD(testB, trainB) = %.4f",
		swd, sameA, sameB)
	if swd < 0.05 || swd > 0.12 {
		t.Errorf("SWD(testA, testB) = %.4f, want within [0.05, 0.12]", swd)
	}

	pairs := MatchNames(namesA, namesB)
	if len(pairs) != len(testA) {
		t.Errorf("%d same-name pairs, want %d", len(pairs), len(testA))
	}
	var xs, ys []Image
	for _, p := range pairs {
		xs = append(xs, testA[p[0]])
		ys = append(ys, testB[p[1]])
	}
	l1, err := PairedL1(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("paired L1 |a − b| over %d pairs = %.4f", len(pairs), l1)
	if math.Abs(l1-0.179) > 0.005 {
		t.Errorf("paired L1 baseline %.4f, want 0.179 ± 0.005", l1)
	}
}

// BenchmarkSWDTestSetSize times one SWD between two sets of the bundled test set's size:
// 153 images of 64×64 each.
func BenchmarkSWDTestSetSize(b *testing.B) {
	x := blobImages(153, 64, 64, 1, 0)
	y := blobImages(153, 64, 64, 2, 0)
	for b.Loop() {
		if _, err := SWD(x, y, SWDOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
