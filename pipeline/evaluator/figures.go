// Package evaluator is the evaluator stage. It consumes the trainer's checkpoint
// announcements and loads each checkpoint's generators. It computes their figures on the
// held-out test images (paired L1, cycle L1 and the sliced Wasserstein distance), writes
// the files people look at (sample grids, an index page and lines of metrics.jsonl) and
// publishes an evaluation report. The figures, test set and output files work without
// NATS, and Evaluator in stage.go connects them to the streams.
//
// Every figure works on Image values: RGB with channels in [0, 1], stored channel-major
// (CHW), the layout the networks use. Test images are used at their stored size, so images
// in one set may differ in size.
package evaluator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
)

var (
	// ErrEmptySet is returned when a figure is asked for over no images.
	ErrEmptySet = errors.New("empty image set")
	// ErrSizeMismatch is returned when paired images or sets do not match in size or count.
	ErrSizeMismatch = errors.New("image sizes do not match")
	// ErrImageTooSmall is returned when an image is smaller than an SWD patch.
	ErrImageTooSmall = errors.New("image smaller than the patch size")
)

// Figures are the evaluation figures of one checkpoint. NaN marks a figure that was not
// computed, such as paired L1 when no test file names match across the domains.
type Figures struct {
	L1AB, L1BA           float64 // mean |G_A(a) − b| and mean |G_B(b) − a| over same-name pairs
	CycleL1AB, CycleL1BA float64 // mean |G_B(G_A(a)) − a| and mean |G_A(G_B(b)) − b|
	SWDAB, SWDBA         float64 // SWD(G_A(testA), testB) and SWD(G_B(testB), testA)
}

// Image is an RGB image with values in [0, 1], stored channel-major: the value of channel c
// at (x, y) is Pix[(c*Height+y)*Width+x].
type Image struct {
	Width, Height int
	Pix           []float32 // 3 × Height × Width values
}

// NewImage returns a black image of the given size.
func NewImage(width, height int) Image {
	return Image{Width: width, Height: height, Pix: make([]float32, 3*width*height)}
}

// FromImage converts img to an Image. Transparent pixels are composited onto white, as the
// loader stage does, and 16-bit channels keep their full precision.
func FromImage(img image.Image) Image {
	b := img.Bounds()
	out := NewImage(b.Dx(), b.Dy())
	plane := out.Width * out.Height
	rgba64, hasRGBA64 := img.(image.RGBA64Image) // avoids an allocation per pixel
	for y := 0; y < out.Height; y++ {
		for x := 0; x < out.Width; x++ {
			var c color.RGBA64
			if hasRGBA64 {
				c = rgba64.RGBA64At(b.Min.X+x, b.Min.Y+y)
			} else {
				c = color.RGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA64)
			}
			white := 0xffff - uint32(c.A)
			i := y*out.Width + x
			out.Pix[i] = float32(min(uint32(c.R)+white, 0xffff)) / 0xffff
			out.Pix[plane+i] = float32(min(uint32(c.G)+white, 0xffff)) / 0xffff
			out.Pix[2*plane+i] = float32(min(uint32(c.B)+white, 0xffff)) / 0xffff
		}
	}
	return out
}

// NRGBA converts im to an opaque 8-bit image, clamping values to [0, 1] and rounding to
// the nearest level.
func (im Image) NRGBA() *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, im.Width, im.Height))
	plane := im.Width * im.Height
	for i := range plane {
		for c := range 3 {
			v := min(max(im.Pix[c*plane+i], 0), 1)
			out.Pix[4*i+c] = uint8(v*255 + 0.5)
		}
		out.Pix[4*i+3] = 0xff
	}
	return out
}

func (im Image) check() error {
	if im.Width <= 0 || im.Height <= 0 || len(im.Pix) != 3*im.Width*im.Height {
		return fmt.Errorf("image %d×%d with %d values, want %d: %w",
			im.Width, im.Height, len(im.Pix), 3*max(im.Width, 0)*max(im.Height, 0), ErrSizeMismatch)
	}
	return nil
}

// meanAbsDiff returns mean |x − y| over all values of two images of the same size.
func meanAbsDiff(x, y Image) (float64, error) {
	if err := x.check(); err != nil {
		return 0, err
	}
	if x.Width != y.Width || x.Height != y.Height || len(x.Pix) != len(y.Pix) {
		return 0, fmt.Errorf("%d×%d against %d×%d: %w", x.Width, x.Height, y.Width, y.Height, ErrSizeMismatch)
	}
	var sum float64
	for i, v := range x.Pix {
		sum += math.Abs(float64(v) - float64(y.Pix[i]))
	}
	return sum / float64(len(x.Pix)), nil
}

// PairedL1 returns the mean over pairs of the per-image mean |xs[i] − ys[i]|. For the
// translation figure l1_AB, xs are G_A(a) and ys the B images with the same file names.
// For the do-nothing baseline, xs are the A images themselves.
func PairedL1(xs, ys []Image) (float64, error) {
	if len(xs) == 0 {
		return 0, ErrEmptySet
	}
	if len(xs) != len(ys) {
		return 0, fmt.Errorf("%d images against %d: %w", len(xs), len(ys), ErrSizeMismatch)
	}
	var sum float64
	for i := range xs {
		d, err := meanAbsDiff(xs[i], ys[i])
		if err != nil {
			return 0, fmt.Errorf("pair %d: %w", i, err)
		}
		sum += d
	}
	return sum / float64(len(xs)), nil
}

// CycleL1 returns the mean over images of the per-image mean |reconstructed[i] − real[i]|,
// such as mean |G_B(G_A(a)) − a| over the test images of A. It is PairedL1 with each
// reconstruction paired with its source image.
func CycleL1(reconstructed, real []Image) (float64, error) {
	return PairedL1(reconstructed, real)
}

// MatchNames pairs the file names of two test folders by base name without extension
// (testA/x.png with testB/x.jpg) and returns the index pairs in the order of namesA.
// Names present in only one list are left out.
func MatchNames(namesA, namesB []string) [][2]int {
	stem := func(p string) string {
		base := path.Base(p)
		return strings.TrimSuffix(base, path.Ext(base))
	}
	indexB := make(map[string]int, len(namesB))
	for j, name := range namesB {
		if _, dup := indexB[stem(name)]; !dup {
			indexB[stem(name)] = j
		}
	}
	var pairs [][2]int
	for i, name := range namesA {
		if j, ok := indexB[stem(name)]; ok {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return pairs
}

// SWDOptions sets the sliced Wasserstein distance parameters. The zero value gives the
// standard figure: 64 patches of 7×7 per image, 256 directions, seed 0.
type SWDOptions struct {
	PatchesPerImage int    // 0 means 64
	PatchSize       int    // side of a square patch in pixels, 0 means 7
	Directions      int    // random projection directions, 0 means 256
	Seed            uint64 // base seed of every random draw
}

func (o SWDOptions) withDefaults() SWDOptions {
	if o.PatchesPerImage <= 0 {
		o.PatchesPerImage = 64
	}
	if o.PatchSize <= 0 {
		o.PatchSize = 7
	}
	if o.Directions <= 0 {
		o.Directions = 256
	}
	return o
}

// PCG stream keys of the random draws. The patch and subset streams are also keyed by
// a fingerprint of the image set.
const (
	streamPatches    = 1
	streamSubset     = 2
	streamDirections = 3
)

// SWD returns the sliced Wasserstein distance between the patch distributions of x and y.
//
// Every image contributes PatchesPerImage patches of PatchSize×PatchSize RGB pixels at
// top-left corners drawn uniformly over all valid positions, each flattened to a descriptor
// of 3·PatchSize² values. When the sets yield different numbers of descriptors, a uniform
// random subset, without replacement, of the larger set's descriptors is kept, so both
// sides have the smaller count. Each dimension is normalised by the mean and the
// population standard deviation of the union of both sets (a dimension that is constant is
// only centred). Both sets are projected onto Directions random unit vectors, and each
// projection is sorted. The figure is the mean absolute difference of the sorted values
// over all directions and ranks.
//
// The patch positions and the subset are drawn from streams keyed by Seed and by a hash of
// the set's own pixels. So SWD(x, x) is exactly 0, SWD(x, y) equals SWD(y, x), and a rerun
// on the same input and platform gives the same figure. Platforms that fuse multiply-add
// (arm64, for one) may differ from amd64 in the last bits.
func SWD(x, y []Image, opts SWDOptions) (float64, error) {
	opts = opts.withDefaults()
	dx, err := descriptors(x, opts)
	if err != nil {
		return 0, fmt.Errorf("first set: %w", err)
	}
	dy, err := descriptors(y, opts)
	if err != nil {
		return 0, fmt.Errorf("second set: %w", err)
	}
	dim := 3 * opts.PatchSize * opts.PatchSize

	// Equal counts: subsample the larger set.
	if dx.count > dy.count {
		dx = dx.subset(dy.count, opts.Seed)
	} else if dy.count > dx.count {
		dy = dy.subset(dx.count, opts.Seed)
	}

	normalise(dx, dy)
	dirs := randomDirections(opts.Directions, dim, opts.Seed)
	return slicedDistance(dx, dy, dirs), nil
}

// descriptorSet holds count descriptors of dim values, row-major, and the fingerprint of
// the images they came from.
type descriptorSet struct {
	count, dim  int
	values      []float64
	fingerprint uint64
}

func (d descriptorSet) row(i int) []float64 { return d.values[i*d.dim : (i+1)*d.dim] }

// fingerprintImages hashes the sizes and pixel bits of a set (64-bit FNV-1a).
func fingerprintImages(images []Image) uint64 {
	const flushBytes = 4096
	h := fnv.New64a()
	buf := make([]byte, 0, flushBytes+16)
	for _, im := range images {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(im.Width))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(im.Height))
		for _, v := range im.Pix {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) >= flushBytes {
				h.Write(buf)
				buf = buf[:0]
			}
		}
	}
	h.Write(buf)
	return h.Sum64()
}

// descriptors draws the patches of every image in images.
func descriptors(images []Image, opts SWDOptions) (descriptorSet, error) {
	if len(images) == 0 {
		return descriptorSet{}, ErrEmptySet
	}
	p := opts.PatchSize
	set := descriptorSet{
		count:       len(images) * opts.PatchesPerImage,
		dim:         3 * p * p,
		fingerprint: fingerprintImages(images),
	}
	set.values = make([]float64, set.count*set.dim)
	rng := rand.New(rand.NewPCG(opts.Seed^set.fingerprint, streamPatches))

	row := 0
	for n, im := range images {
		if err := im.check(); err != nil {
			return descriptorSet{}, fmt.Errorf("image %d: %w", n, err)
		}
		if im.Width < p || im.Height < p {
			return descriptorSet{}, fmt.Errorf("image %d is %d×%d, patch %d×%d: %w",
				n, im.Width, im.Height, p, p, ErrImageTooSmall)
		}
		plane := im.Width * im.Height
		for range opts.PatchesPerImage {
			x0 := rng.IntN(im.Width - p + 1)
			y0 := rng.IntN(im.Height - p + 1)
			d := set.row(row)
			k := 0
			for c := range 3 {
				for y := y0; y < y0+p; y++ {
					start := c*plane + y*im.Width + x0
					for _, v := range im.Pix[start : start+p] {
						d[k] = float64(v)
						k++
					}
				}
			}
			row++
		}
	}
	return set, nil
}

// subset keeps n descriptors chosen uniformly at random without replacement, in their
// original order.
func (d descriptorSet) subset(n int, seed uint64) descriptorSet {
	rng := rand.New(rand.NewPCG(seed^d.fingerprint, streamSubset))
	keep := rng.Perm(d.count)[:n]
	slices.Sort(keep)
	out := descriptorSet{count: n, dim: d.dim, fingerprint: d.fingerprint, values: make([]float64, n*d.dim)}
	for i, src := range keep {
		copy(out.row(i), d.row(src))
	}
	return out
}

// normalise centres and scales every dimension of both sets by the mean and population
// standard deviation of their union. Per-set sums are added last so the result does not
// depend on the order of the two sets.
func normalise(a, b descriptorSet) {
	dim := a.dim
	n := float64(a.count + b.count)
	sumA, sumB := columnSums(a, nil), columnSums(b, nil)
	mean := make([]float64, dim)
	for j := range dim {
		mean[j] = (sumA[j] + sumB[j]) / n
	}
	sqA, sqB := columnSums(a, mean), columnSums(b, mean)
	scale := make([]float64, dim)
	for j := range dim {
		std := math.Sqrt((sqA[j] + sqB[j]) / n)
		scale[j] = 1
		if std > 0 {
			scale[j] = 1 / std
		}
	}
	for _, set := range []descriptorSet{a, b} {
		for i := range set.count {
			r := set.row(i)
			for j := range r {
				r[j] = (r[j] - mean[j]) * scale[j]
			}
		}
	}
}

// columnSums returns per-dimension sums of the values, or of squared deviations from
// mean when mean is not nil.
func columnSums(d descriptorSet, mean []float64) []float64 {
	sums := make([]float64, d.dim)
	for i := range d.count {
		for j, v := range d.row(i) {
			if mean != nil {
				v -= mean[j]
				v *= v
			}
			sums[j] += v
		}
	}
	return sums
}

// randomDirections returns n unit vectors of dim values drawn uniformly on the sphere
// (normalised Gaussian vectors), row-major.
func randomDirections(n, dim int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, streamDirections))
	dirs := make([]float64, n*dim)
	for i := range n {
		v := dirs[i*dim : (i+1)*dim]
		var norm float64
		for j := range v {
			v[j] = rng.NormFloat64()
			norm += v[j] * v[j]
		}
		norm = math.Sqrt(norm)
		for j := range v {
			v[j] /= norm
		}
	}
	return dirs
}

// slicedDistance projects both sets onto every direction, sorts the projections and
// returns the mean absolute difference of the sorted values. Directions are split among
// GOMAXPROCS workers. Each direction's sum is computed alone, and the sums are added in
// direction order, so the figure does not depend on the number of workers.
func slicedDistance(a, b descriptorSet, dirs []float64) float64 {
	dim := a.dim
	nDirs := len(dirs) / dim
	perDir := make([]float64, nDirs)

	workers := min(runtime.GOMAXPROCS(0), nDirs)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pa := make([]float64, a.count)
			pb := make([]float64, b.count)
			for k := w; k < nDirs; k += workers {
				dir := dirs[k*dim : (k+1)*dim]
				project(a, dir, pa)
				project(b, dir, pb)
				slices.Sort(pa)
				slices.Sort(pb)
				var sum float64
				for i := range pa {
					sum += math.Abs(pa[i] - pb[i])
				}
				perDir[k] = sum
			}
		}()
	}
	wg.Wait()

	var total float64
	for _, s := range perDir {
		total += s
	}
	return total / float64(nDirs*a.count)
}

// project writes the dot product of every descriptor of d with dir into out.
func project(d descriptorSet, dir []float64, out []float64) {
	for i := range d.count {
		r := d.row(i)
		r = r[:len(dir)]
		var s0, s1, s2, s3 float64
		j := 0
		for ; j+4 <= len(dir); j += 4 {
			s0 += r[j] * dir[j]
			s1 += r[j+1] * dir[j+1]
			s2 += r[j+2] * dir[j+2]
			s3 += r[j+3] * dir[j+3]
		}
		for ; j < len(dir); j++ {
			s0 += r[j] * dir[j]
		}
		out[i] = (s0 + s1) + (s2 + s3)
	}
}
