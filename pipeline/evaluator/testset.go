package evaluator

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG for image.DecodeConfig
	"io/fs"
	"math"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// Reasons for leaving a test image out, besides the dataset.SkipReason values of files
// that cannot be read or decoded.
const (
	// SkipTooSmall: a side is below model.MinImageSize, the smallest the generators take.
	SkipTooSmall = "too_small"
	// SkipPairSize: the file has a same-name partner in the other test folder with another
	// size, so the pair is left out of paired L1; the image itself is still used.
	SkipPairSize = "pair_size_mismatch"
)

// TestImage is one test image at its stored size, ready for the generators.
type TestImage struct {
	Name  string // path within the dataset, such as testA/x.png
	Image Image  // pixels in [0, 1]

	// input is the image as the generators take it: CHW in [−1, 1], padded by reflection
	// on the right and bottom to inputWidth×inputHeight, the next multiples of 4.
	input                   []float32
	inputWidth, inputHeight int
}

// TestSkip records a test file left out, or a same-name pair left out of paired L1.
type TestSkip struct {
	Path   string
	Reason string // a dataset.SkipReason value or one of the Skip constants
	Err    error  // detail; may be nil
}

func (s TestSkip) String() string {
	if s.Err == nil {
		return fmt.Sprintf("%s: %s", s.Path, s.Reason)
	}
	return fmt.Sprintf("%s: %s: %v", s.Path, s.Reason, s.Err)
}

// TestSet is the held-out data of a dataset with its do-nothing baselines.
type TestSet struct {
	A, B []TestImage // sorted by path
	// Pairs holds the indices (into A, B) of images whose names match across the folders
	// (see MatchNames) and whose sizes are equal.
	Pairs [][2]int
	// L1Baseline is mean |a − b| over Pairs, NaN when there are none.
	L1Baseline float64
	// SWDBaseline is SWD(A, B) with the default SWDOptions.
	SWDBaseline float64
	// Skipped lists every file and pair left out, with the reason.
	Skipped []TestSkip
}

// LoadTestSet reads the test folders dirA and dirB of fsys, decodes every usable image at
// its stored size (no resize, crop or flip) and computes the baselines. Files that cannot
// be used are listed in TestSet.Skipped. It returns an error when a folder is missing or
// keeps no usable image.
func LoadTestSet(ctx context.Context, fsys fs.FS, dirA, dirB string, limits dataset.Limits) (*TestSet, error) {
	set := &TestSet{L1Baseline: math.NaN()}
	var err error
	if set.A, err = loadTestDomain(ctx, fsys, dirA, limits, &set.Skipped); err != nil {
		return nil, err
	}
	if set.B, err = loadTestDomain(ctx, fsys, dirB, limits, &set.Skipped); err != nil {
		return nil, err
	}

	for _, p := range MatchNames(testNames(set.A), testNames(set.B)) {
		a, b := set.A[p[0]].Image, set.B[p[1]].Image
		if a.Width != b.Width || a.Height != b.Height {
			set.Skipped = append(set.Skipped, TestSkip{Path: set.B[p[1]].Name, Reason: SkipPairSize,
				Err: fmt.Errorf("%d×%d, but %s is %d×%d", b.Width, b.Height, set.A[p[0]].Name, a.Width, a.Height)})
			continue
		}
		set.Pairs = append(set.Pairs, p)
	}

	if len(set.Pairs) > 0 {
		as, bs := set.pairImages(set.A, set.B)
		if set.L1Baseline, err = PairedL1(as, bs); err != nil {
			return nil, fmt.Errorf("paired L1 baseline: %w", err)
		}
	}
	if set.SWDBaseline, err = SWD(images(set.A), images(set.B), SWDOptions{}); err != nil {
		return nil, fmt.Errorf("SWD baseline: %w", err)
	}
	return set, nil
}

// pairImages returns the images of Pairs, taking the first of each pair from xs (indexed
// like A) and the second from ys (indexed like B).
func (s *TestSet) pairImages(xs, ys []TestImage) (first, second []Image) {
	for _, p := range s.Pairs {
		first = append(first, xs[p[0]].Image)
		second = append(second, ys[p[1]].Image)
	}
	return first, second
}

func loadTestDomain(ctx context.Context, fsys fs.FS, dir string, limits dataset.Limits, skipped *[]TestSkip) ([]TestImage, error) {
	domain, scanSkips, err := dataset.ScanDomain(ctx, fsys, dir, limits)
	if err != nil {
		return nil, fmt.Errorf("scan test folder %s: %w", dir, err)
	}
	for _, s := range scanSkips {
		*skipped = append(*skipped, TestSkip{Path: s.Path, Reason: string(s.Reason), Err: s.Err})
	}

	var out []TestImage
	for _, name := range domain.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, skip := loadStoredSize(fsys, name, limits)
		if skip != nil {
			*skipped = append(*skipped, *skip)
			continue
		}
		t, err := newTestImage(name, img)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("test folder %s: %w", dir, dataset.ErrEmptyDomain)
	}
	return out, nil
}

// loadStoredSize decodes name at its stored size.
func loadStoredSize(fsys fs.FS, name string, limits dataset.Limits) (*image.NRGBA, *TestSkip) {
	img, err := dataset.DecodeImage(fsys, name, limits)
	if err != nil {
		if se, ok := errors.AsType[*dataset.SkipError](err); ok {
			return nil, &TestSkip{Path: name, Reason: string(se.Reason), Err: se.Err}
		}
		return nil, &TestSkip{Path: name, Reason: string(dataset.ReasonCorrupt), Err: err}
	}
	width, height := img.Bounds().Dx(), img.Bounds().Dy()
	if width < model.MinImageSize || height < model.MinImageSize {
		return nil, &TestSkip{Path: name, Reason: SkipTooSmall,
			Err: fmt.Errorf("stored size %d×%d, the generators need at least %d×%d", width, height, model.MinImageSize, model.MinImageSize)}
	}
	return img, nil
}

func newTestImage(name string, img *image.NRGBA) (TestImage, error) {
	b := img.Bounds()
	hwc, err := messages.AppendHWCFromImage(nil, img, image.White)
	if err != nil {
		return TestImage{}, fmt.Errorf("test image %s: %w", name, err)
	}
	chw, err := messages.AppendFloat32CHW(nil, hwc, b.Dy(), b.Dx())
	if err != nil {
		return TestImage{}, fmt.Errorf("test image %s: %w", name, err)
	}
	t := TestImage{Name: name, Image: FromImage(img)}
	t.inputWidth, t.inputHeight = roundUp4(b.Dx()), roundUp4(b.Dy())
	t.input = padReflect(chw, b.Dx(), b.Dy(), t.inputWidth, t.inputHeight)
	return t, nil
}

func roundUp4(n int) int { return (n + 3) &^ 3 }

// padReflect extends a CHW image of width×height to toWidth×toHeight on the right and
// bottom by mirroring without repeating the edge pixel (column width is column width−2),
// as reflection padding in the networks does. The padding must be smaller than the side.
func padReflect(chw []float32, width, height, toWidth, toHeight int) []float32 {
	if width == toWidth && height == toHeight {
		return chw
	}
	out := make([]float32, 3*toWidth*toHeight)
	for c := range 3 {
		src := chw[c*width*height : (c+1)*width*height]
		dst := out[c*toWidth*toHeight : (c+1)*toWidth*toHeight]
		for y := range toHeight {
			sy := reflectIndex(y, height)
			for x := range toWidth {
				dst[y*toWidth+x] = src[sy*width+reflectIndex(x, width)]
			}
		}
	}
	return out
}

func reflectIndex(i, n int) int {
	if i < n {
		return i
	}
	return 2*(n-1) - i
}

// cropUnit cuts the top-left width×height of a generator output of
// fromWidth×fromHeight and maps it from [−1, 1] to [0, 1]. It rejects NaN and
// infinities, which mean the network diverged.
func cropUnit(chw []float32, fromWidth, fromHeight, width, height int) (Image, error) {
	out := NewImage(width, height)
	plane := width * height
	for c := range 3 {
		for y := range height {
			row := chw[(c*fromHeight+y)*fromWidth:][:width]
			for x, v := range row {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return Image{}, fmt.Errorf("%w: %v in channel %d at (%d, %d)", errNonFinite, v, c, x, y)
				}
				out.Pix[c*plane+y*width+x] = (v + 1) / 2
			}
		}
	}
	return out, nil
}

// errNonFinite marks a generator output with NaN or infinite values.
var errNonFinite = errors.New("generator output is not finite")

func testNames(ts []TestImage) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names
}

func images(ts []TestImage) []Image {
	out := make([]Image, len(ts))
	for i, t := range ts {
		out[i] = t.Image
	}
	return out
}
