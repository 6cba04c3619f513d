package augmenter

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gocyclegan/cyclegan/messages"
)

var (
	// ErrNotRawPair is returned by Augment for a pair whose kind is not raw.
	ErrNotRawPair = errors.New("pair is not a raw pair")
	// ErrPairTooSmall is returned by Augment for a raw pair smaller than the crop.
	ErrPairTooSmall = errors.New("raw pair is smaller than the crop")
)

// DrawTransforms returns the crop and flip of image A and of image B of the pair with
// sequence, for images of loadHeight×loadWidth pixels cropped to cropSize×cropSize.
// Each offset is uniform over the positions where the crop fits, as in the reference
// CycleGAN's random crop, and each image is mirrored with probability one half when
// flip is true. The result depends only on the arguments. The caller ensures that
// cropSize is at most loadHeight and loadWidth.
func DrawTransforms(seed, sequence uint64, loadHeight, loadWidth, cropSize int, flip bool) (a, b messages.Transform) {
	rng := rand.New(rand.NewPCG(seed, sequence))
	a = drawTransform(rng, loadHeight, loadWidth, cropSize, flip)
	b = drawTransform(rng, loadHeight, loadWidth, cropSize, flip)
	return a, b
}

func drawTransform(rng *rand.Rand, height, width, cropSize int, flip bool) messages.Transform {
	t := messages.Transform{
		CropX: rng.IntN(width - cropSize + 1),
		CropY: rng.IntN(height - cropSize + 1),
	}
	// The flip bit is drawn even when flips are off, so that turning them off leaves
	// every crop offset as it was.
	mirrored := rng.IntN(2) == 1
	t.Flipped = flip && mirrored
	return t
}

// Augment returns the train pair made from raw: both images cropped to cropSize and
// possibly mirrored, as DrawTransforms draws for raw's sequence. The train pair keeps
// raw's run, sequence, epoch and names, and records the load size and transforms. It
// returns an error wrapping ErrNotRawPair or ErrPairTooSmall for a pair it cannot
// augment.
func Augment(raw *messages.Pair, cropSize int, seed uint64, flip bool) (*messages.Pair, error) {
	if raw.Kind != messages.KindRaw {
		return nil, fmt.Errorf("%w: pair %d has kind %v", ErrNotRawPair, raw.Sequence, raw.Kind)
	}
	if raw.Height < cropSize || raw.Width < cropSize {
		return nil, fmt.Errorf("%w: pair %d is %d×%d pixels (height×width), the crop is %d×%d",
			ErrPairTooSmall, raw.Sequence, raw.Height, raw.Width, cropSize, cropSize)
	}

	ta, tb := DrawTransforms(seed, raw.Sequence, raw.Height, raw.Width, cropSize, flip)
	pixA, err := messages.AppendCropFlip(nil, raw.A, raw.Height, raw.Width, cropSize, cropSize, ta)
	if err != nil {
		return nil, fmt.Errorf("crop image A of pair %d: %w", raw.Sequence, err)
	}
	pixB, err := messages.AppendCropFlip(nil, raw.B, raw.Height, raw.Width, cropSize, cropSize, tb)
	if err != nil {
		return nil, fmt.Errorf("crop image B of pair %d: %w", raw.Sequence, err)
	}
	return &messages.Pair{
		Kind:       messages.KindTrain,
		Run:        raw.Run,
		Sequence:   raw.Sequence,
		Epoch:      raw.Epoch,
		NameA:      raw.NameA,
		NameB:      raw.NameB,
		Height:     cropSize,
		Width:      cropSize,
		LoadHeight: raw.Height,
		LoadWidth:  raw.Width,
		TransformA: ta,
		TransformB: tb,
		A:          pixA,
		B:          pixB,
	}, nil
}
