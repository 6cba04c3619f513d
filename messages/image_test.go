package messages

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// opaqueImage hides the concrete type of an image, so AppendHWCFromImage
// takes its generic path.
type opaqueImage struct{ image.Image }

func TestNRGBARoundTrip(t *testing.T) {
	pix := testPixels(5, 7, 3)
	img, err := NRGBAFromHWC(pix, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, 7, 5) {
		t.Errorf("bounds = %v, want 7 wide and 5 high", got)
	}
	// Pixel (x=6, y=4) is the last one.
	if got, want := img.NRGBAAt(6, 4), (color.NRGBA{pix[len(pix)-3], pix[len(pix)-2], pix[len(pix)-1], 255}); got != want {
		t.Errorf("pixel (6, 4) = %v, want %v", got, want)
	}
	back, err := AppendHWCFromImage(nil, img, color.White)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, pix) {
		t.Error("HWC -> NRGBA -> HWC changed the pixels")
	}
}

func TestAppendHWCFromImageCompositesAlpha(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	img.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 128}) // half-transparent red
	img.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 0})  // fully transparent
	img.SetNRGBA(2, 0, color.NRGBA{10, 20, 30, 255})
	got, err := AppendHWCFromImage(nil, img, color.White)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{255, 127, 127, 255, 255, 255, 10, 20, 30}
	if !bytes.Equal(got, want) {
		t.Errorf("over white = %v, want %v", got, want)
	}
	got, err = AppendHWCFromImage(nil, img, color.Black)
	if err != nil {
		t.Fatal(err)
	}
	want = []uint8{128, 0, 0, 0, 0, 0, 10, 20, 30}
	if !bytes.Equal(got, want) {
		t.Errorf("over black = %v, want %v", got, want)
	}
}

func TestAppendHWCFromImageFastPathsMatchGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nrgba := image.NewNRGBA(image.Rect(0, 0, 9, 6))
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(rng.UintN(256))
	}
	rgba := image.NewRGBA(nrgba.Bounds())
	for y := 0; y < 6; y++ {
		for x := 0; x < 9; x++ {
			rgba.Set(x, y, nrgba.At(x, y))
		}
	}
	background := color.RGBA{200, 100, 50, 255}
	cases := []struct {
		name string
		img  image.Image
	}{
		{"NRGBA", nrgba},
		{"RGBA", rgba},
		{"NRGBA sub-image", nrgba.SubImage(image.Rect(2, 1, 7, 5))},
		{"RGBA sub-image", rgba.SubImage(image.Rect(2, 1, 7, 5))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fast, err := AppendHWCFromImage(nil, tc.img, background)
			if err != nil {
				t.Fatal(err)
			}
			generic, err := AppendHWCFromImage(nil, opaqueImage{tc.img}, background)
			if err != nil {
				t.Fatal(err)
			}
			b := tc.img.Bounds()
			if len(fast) != b.Dx()*b.Dy()*3 {
				t.Fatalf("got %d bytes, want %d", len(fast), b.Dx()*b.Dy()*3)
			}
			if !bytes.Equal(fast, generic) {
				t.Errorf("fast path differs from generic path:\n fast %v\n generic %v", fast, generic)
			}
		})
	}
}

func TestAppendHWCFromImageEmpty(t *testing.T) {
	_, err := AppendHWCFromImage(nil, image.NewNRGBA(image.Rect(0, 0, 0, 4)), color.White)
	if !errors.Is(err, ErrDimensions) {
		t.Errorf("empty image: error = %v, want ErrDimensions", err)
	}
}

func TestAppendFloat32CHW(t *testing.T) {
	// One row of two pixels: (0, 255, 51) and (102, 153, 204).
	pix := []uint8{0, 255, 51, 102, 153, 204}
	prefix := []float32{9}
	got, err := AppendFloat32CHW(prefix, pix, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{9, -1, -0.2, 1, 0.2, -0.6, 0.6}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Errorf("value %d = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := AppendFloat32CHW(nil, pix, 2, 2); !errors.Is(err, ErrDimensions) {
		t.Errorf("length mismatch: error = %v, want ErrDimensions", err)
	}
}

func TestAppendUint8HWCInvertsFloat32CHW(t *testing.T) {
	pix := make([]uint8, 256*3)
	for i := range pix {
		pix[i] = uint8(i / 3) // every byte value in every channel
	}
	chw, err := AppendFloat32CHW(nil, pix, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	back, err := AppendUint8HWC(nil, chw, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, pix) {
		t.Error("HWC -> CHW float32 -> HWC changed the pixels")
	}
}

func TestAppendUint8HWCClampsAndRejects(t *testing.T) {
	got, err := AppendUint8HWC(nil, []float32{-2, 1.5, 0}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{0, 255, 128}; !bytes.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		if _, err := AppendUint8HWC(nil, []float32{0, v, 0}, 1, 1); !errors.Is(err, ErrField) {
			t.Errorf("sample %v: error = %v, want ErrField", v, err)
		}
	}
}

func TestAppendCropFlip(t *testing.T) {
	// A 3x4 source whose pixel (x, y) is (x, y, 7).
	const srcHeight, srcWidth = 3, 4
	src := make([]uint8, 0, srcHeight*srcWidth*3)
	for y := 0; y < srcHeight; y++ {
		for x := 0; x < srcWidth; x++ {
			src = append(src, uint8(x), uint8(y), 7)
		}
	}
	cases := []struct {
		name string
		t    Transform
		want []uint8
	}{
		{"crop", Transform{CropX: 1, CropY: 1}, []uint8{1, 1, 7, 2, 1, 7, 1, 2, 7, 2, 2, 7}},
		{"crop and flip", Transform{CropX: 2, CropY: 0, Flipped: true}, []uint8{3, 0, 7, 2, 0, 7, 3, 1, 7, 2, 1, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendCropFlip(nil, src, srcHeight, srcWidth, 2, 2, tc.t)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	bad := []Transform{{CropX: 3}, {CropY: 2}, {CropX: -1}}
	for _, tr := range bad {
		if _, err := AppendCropFlip(nil, src, srcHeight, srcWidth, 2, 2, tr); !errors.Is(err, ErrDimensions) {
			t.Errorf("transform %+v: error = %v, want ErrDimensions", tr, err)
		}
	}
	if _, err := AppendCropFlip(nil, src[:5], srcHeight, srcWidth, 2, 2, Transform{}); !errors.Is(err, ErrDimensions) {
		t.Errorf("short source: error = %v, want ErrDimensions", err)
	}
}

// TestTrainPairFromRawPair runs the augmenter's path: decode a raw pair,
// crop and flip both images, encode a train pair, decode it.
func TestTrainPairFromRawPair(t *testing.T) {
	rawPayload, err := EncodePair(rawTestPair(6, 5))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := DecodePair(rawPayload)
	if err != nil {
		t.Fatal(err)
	}

	train := *raw
	train.Kind = KindTrain
	train.Height, train.Width = 4, 4
	train.TransformA = Transform{CropX: 1, CropY: 2, Flipped: true}
	train.TransformB = Transform{CropX: 0, CropY: 1}
	if train.A, err = AppendCropFlip(nil, raw.A, raw.Height, raw.Width, 4, 4, train.TransformA); err != nil {
		t.Fatal(err)
	}
	if train.B, err = AppendCropFlip(nil, raw.B, raw.Height, raw.Width, 4, 4, train.TransformB); err != nil {
		t.Fatal(err)
	}

	payload, err := EncodePair(&train)
	if err != nil {
		t.Fatalf("EncodePair of the train pair: %v", err)
	}
	got, err := DecodePair(payload)
	if err != nil {
		t.Fatalf("DecodePair of the train pair: %v", err)
	}

	if got.LoadHeight != 6 || got.LoadWidth != 5 {
		t.Errorf("load size = %dx%d, want 6x5", got.LoadHeight, got.LoadWidth)
	}
	// Pixel (0, 0) of the flipped A is source pixel (x=1+3, y=2).
	srcOffset := (2*5 + 4) * 3
	if !bytes.Equal(got.A[:3], raw.A[srcOffset:srcOffset+3]) {
		t.Errorf("train A pixel (0, 0) = %v, want source pixel (4, 2) = %v", got.A[:3], raw.A[srcOffset:srcOffset+3])
	}
}
