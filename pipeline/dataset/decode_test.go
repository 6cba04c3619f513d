package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// encodePNG returns img as PNG bytes.
func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode PNG: %v", err)
	}
	return buf.Bytes()
}

// encodeJPEG returns img as JPEG bytes at quality 100.
func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatalf("encode JPEG: %v", err)
	}
	return buf.Bytes()
}

// writeFile writes data to dir/name, creating parent folders.
func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// uniformNRGBA returns a w×h image filled with c.
func uniformNRGBA(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// pngChunk returns one PNG chunk with its CRC.
func pngChunk(kind string, data []byte) []byte {
	var buf bytes.Buffer
	binary.Write(&buf, binary.BigEndian, uint32(len(data)))
	buf.WriteString(kind)
	buf.Write(data)
	crc := crc32.NewIEEE()
	crc.Write([]byte(kind))
	crc.Write(data)
	binary.Write(&buf, binary.BigEndian, crc.Sum32())
	return buf.Bytes()
}

// hugePNGHeader returns a PNG signature and an IHDR chunk declaring an 8-bit RGB image
// of w×h pixels, followed by nothing else.
func hugePNGHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8] = 8 // bit depth
	ihdr[9] = 2 // colour type: RGB
	return append(append([]byte{}, pngSignature...), pngChunk("IHDR", ihdr)...)
}

// withEXIFOrientation inserts an APP1 segment holding a little-endian EXIF block with a
// single Orientation tag (0x0112, type SHORT) right after the JPEG's SOI marker.
func withEXIFOrientation(jpg []byte, orientation uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("II*\x00")                         // little-endian TIFF header
	binary.Write(&tiff, binary.LittleEndian, uint32(8)) // offset of IFD0
	binary.Write(&tiff, binary.LittleEndian, uint16(1)) // one IFD entry
	binary.Write(&tiff, binary.LittleEndian, uint16(0x0112))
	binary.Write(&tiff, binary.LittleEndian, uint16(3))   // type SHORT
	binary.Write(&tiff, binary.LittleEndian, uint32(1))   // count
	binary.Write(&tiff, binary.LittleEndian, orientation) // value, left-justified in 4 bytes
	binary.Write(&tiff, binary.LittleEndian, uint16(0))
	binary.Write(&tiff, binary.LittleEndian, uint32(0)) // no next IFD

	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var app1 bytes.Buffer
	app1.Write([]byte{0xff, 0xe1})
	binary.Write(&app1, binary.BigEndian, uint16(len(payload)+2)) // length counts itself
	app1.Write(payload)

	out := append([]byte{}, jpg[:2]...) // SOI
	out = append(out, app1.Bytes()...)
	return append(out, jpg[2:]...)
}

func rgbAt(img *image.NRGBA, x, y int) [4]uint8 {
	i := img.PixOffset(x, y)
	return [4]uint8{img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3]}
}

func TestFlattenColorModels(t *testing.T) {
	paletted := image.NewPaletted(image.Rect(0, 0, 3, 1), color.Palette{
		color.NRGBA{0, 0, 255, 255}, // opaque blue
		color.NRGBA{0, 0, 0, 0},     // fully transparent
		color.NRGBA{0, 0, 0, 128},   // half-transparent black
	})
	paletted.Pix = []uint8{0, 1, 2}

	gray16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	gray16.SetGray16(0, 0, color.Gray16{Y: 0x8000})
	gray16.SetGray16(1, 0, color.Gray16{Y: 0x00ff}) // clipping would give 255, scaling gives 0
	gray16.SetGray16(2, 0, color.Gray16{Y: 0xffff})

	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0})
	nrgba.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 128})

	rgba := image.NewRGBA(image.Rect(0, 0, 1, 1))
	rgba.SetRGBA(0, 0, color.RGBA{128, 0, 0, 128}) // premultiplied half-transparent red

	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	nrgba64.SetNRGBA64(0, 0, color.NRGBA64{0x1234, 0xabcd, 0xffff, 0xffff})

	// The standard JPEG encoder writes no CMYK, so the CMYK model is tested in memory.
	cmyk := image.NewCMYK(image.Rect(0, 0, 2, 1))
	cmyk.SetCMYK(0, 0, color.CMYK{C: 0, M: 255, Y: 255, K: 0})
	cmyk.SetCMYK(1, 0, color.CMYK{C: 0, M: 0, Y: 0, K: 255})

	ycbcr := image.NewYCbCr(image.Rect(0, 0, 1, 1), image.YCbCrSubsampleRatio444)
	ycbcr.Y[0], ycbcr.Cb[0], ycbcr.Cr[0] = 81, 90, 240
	wantR, wantG, wantB := color.YCbCrToRGB(81, 90, 240)

	offset := image.NewGray(image.Rect(5, 7, 6, 8)) // bounds not at the origin
	offset.SetGray(5, 7, color.Gray{Y: 0x40})

	tests := []struct {
		name string
		img  image.Image
		want [][3]uint8 // pixels of row 0, left to right
	}{
		{"gray", &image.Gray{Pix: []uint8{0, 0x40, 0xff}, Stride: 3, Rect: image.Rect(0, 0, 3, 1)},
			[][3]uint8{{0, 0, 0}, {0x40, 0x40, 0x40}, {0xff, 0xff, 0xff}}},
		{"gray16 scaled", gray16, [][3]uint8{{0x80, 0x80, 0x80}, {0, 0, 0}, {0xff, 0xff, 0xff}}},
		{"paletted with transparency", paletted, [][3]uint8{{0, 0, 255}, {255, 255, 255}, {127, 127, 127}}},
		{"nrgba with alpha", nrgba, [][3]uint8{{255, 255, 255}, {255, 127, 127}}},
		{"rgba premultiplied", rgba, [][3]uint8{{255, 127, 127}}},
		{"nrgba64", nrgba64, [][3]uint8{{0x12, 0xab, 0xff}}},
		{"cmyk", cmyk, [][3]uint8{{255, 0, 0}, {0, 0, 0}}},
		{"ycbcr", ycbcr, [][3]uint8{{wantR, wantG, wantB}}},
		{"offset bounds", offset, [][3]uint8{{0x40, 0x40, 0x40}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Flatten(tt.img)
			if got.Rect != image.Rect(0, 0, len(tt.want), 1) {
				t.Fatalf("bounds %v, want %v", got.Rect, image.Rect(0, 0, len(tt.want), 1))
			}
			for x, w := range tt.want {
				want := [4]uint8{w[0], w[1], w[2], 0xff}
				if p := rgbAt(got, x, 0); p != want {
					t.Errorf("pixel %d = %v, want %v", x, p, want)
				}
			}
		})
	}
}

// TestLoadImageFileFormats decodes real files of each colour model at their own size, so
// no resampling blurs the values.
func TestLoadImageFileFormats(t *testing.T) {
	dir := t.TempDir()

	gray16 := image.NewGray16(image.Rect(0, 0, 2, 2))
	gray16.SetGray16(0, 0, color.Gray16{Y: 0x80ff})
	gray16.SetGray16(1, 0, color.Gray16{Y: 0x00ff})

	paletted := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{
		color.NRGBA{0, 255, 0, 255}, color.NRGBA{0, 0, 0, 0},
	})
	paletted.Pix = []uint8{0, 1, 1, 1}

	nrgba := uniformNRGBA(2, 2, color.NRGBA{0, 0, 255, 255})
	nrgba.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 128})

	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = 0x60
	}

	tests := []struct {
		name      string
		data      []byte
		tolerance int
		want      map[[2]int][3]uint8 // pixel (x, y) → RGB
	}{
		{"gray16.png", encodePNG(t, gray16), 0,
			map[[2]int][3]uint8{{0, 0}: {0x80, 0x80, 0x80}, {1, 0}: {0, 0, 0}}},
		{"paletted.png", encodePNG(t, paletted), 0,
			map[[2]int][3]uint8{{0, 0}: {0, 255, 0}, {1, 0}: {255, 255, 255}}},
		{"alpha.png", encodePNG(t, nrgba), 0,
			map[[2]int][3]uint8{{0, 0}: {0, 0, 255}, {1, 0}: {255, 127, 127}}},
		{"gray.jpg", encodeJPEG(t, gray), 1,
			map[[2]int][3]uint8{{0, 0}: {0x60, 0x60, 0x60}, {7, 7}: {0x60, 0x60, 0x60}}},
		{"ycbcr.JPEG", encodeJPEG(t, uniformNRGBA(8, 8, color.NRGBA{200, 40, 90, 255})), 3,
			map[[2]int][3]uint8{{0, 0}: {200, 40, 90}, {5, 3}: {200, 40, 90}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, dir, tt.name, tt.data)
			cfg, _, err := image.DecodeConfig(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			img, err := LoadImage(os.DirFS(dir), tt.name, cfg.Width, Limits{})
			if err != nil {
				t.Fatalf("LoadImage: %v", err)
			}
			if !img.Opaque() {
				t.Errorf("image is not opaque")
			}
			for xy, w := range tt.want {
				p := rgbAt(img, xy[0], xy[1])
				for c := range 3 {
					if d := int(p[c]) - int(w[c]); d < -tt.tolerance || d > tt.tolerance {
						t.Errorf("pixel %v = %v, want %v ± %d", xy, p[:3], w, tt.tolerance)
						break
					}
				}
			}
		})
	}
}

func TestLoadImageEXIFOrientation(t *testing.T) {
	// 16×8, left half red, right half blue. Orientation 6 rotates it 90° clockwise for
	// display (left becomes top), 8 counter-clockwise (left becomes bottom), 3 by 180°.
	src := uniformNRGBA(16, 8, color.NRGBA{0, 0, 255, 255})
	for y := range 8 {
		for x := range 8 {
			src.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
		}
	}
	plain := encodeJPEG(t, src)

	tests := []struct {
		orientation uint16
		redAt       [2]int // a pixel that must be red in the 32×32 result
		blueAt      [2]int
	}{
		{1, [2]int{4, 16}, [2]int{28, 16}},
		{3, [2]int{28, 16}, [2]int{4, 16}},
		{6, [2]int{16, 4}, [2]int{16, 28}},
		{8, [2]int{16, 28}, [2]int{16, 4}},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		name := "orient" + string(rune('0'+tt.orientation)) + ".jpg"
		writeFile(t, dir, name, withEXIFOrientation(plain, tt.orientation))
		img, err := LoadImage(os.DirFS(dir), name, 32, Limits{})
		if err != nil {
			t.Fatalf("orientation %d: LoadImage: %v", tt.orientation, err)
		}
		if p := rgbAt(img, tt.redAt[0], tt.redAt[1]); p[0] < 200 || p[2] > 50 {
			t.Errorf("orientation %d: pixel %v = %v, want red", tt.orientation, tt.redAt, p)
		}
		if p := rgbAt(img, tt.blueAt[0], tt.blueAt[1]); p[2] < 200 || p[0] > 50 {
			t.Errorf("orientation %d: pixel %v = %v, want blue", tt.orientation, tt.blueAt, p)
		}
	}
}

func TestLoadImageResize(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		w, h int
		size int
	}{
		{"upscale.png", 4, 4, 16},
		{"downscale.png", 40, 40, 8},
		{"wide.png", 30, 10, 12},
		{"tall.png", 5, 20, 12},
	}
	colour := color.NRGBA{30, 140, 220, 255}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, dir, tt.name, encodePNG(t, uniformNRGBA(tt.w, tt.h, colour)))
			img, err := LoadImage(os.DirFS(dir), tt.name, tt.size, Limits{})
			if err != nil {
				t.Fatalf("LoadImage: %v", err)
			}
			if img.Rect != image.Rect(0, 0, tt.size, tt.size) {
				t.Fatalf("bounds %v, want %d×%d", img.Rect, tt.size, tt.size)
			}
			// Resampling a uniform image with weights that sum to 1 keeps its colour.
			for _, xy := range [][2]int{{0, 0}, {tt.size - 1, tt.size - 1}, {tt.size / 2, tt.size / 3}} {
				want := [4]uint8{colour.R, colour.G, colour.B, 255}
				if p := rgbAt(img, xy[0], xy[1]); p != want {
					t.Errorf("pixel %v = %v, want %v", xy, p, want)
				}
			}
		})
	}
}

func TestLoadImageRejects(t *testing.T) {
	dir := t.TempDir()
	noisy := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range noisy.Pix {
		noisy.Pix[i] = uint8(i * 37)
	}
	goodPNG := encodePNG(t, noisy)
	goodJPEG := encodeJPEG(t, noisy)
	badCRC := bytes.Clone(goodPNG)
	badCRC[29] ^= 0xff // last byte of the IHDR CRC

	tests := []struct {
		name   string
		data   []byte
		limits Limits
		want   SkipReason
	}{
		{"text.png", []byte("this is not an image\n"), Limits{}, ReasonSignature},
		{"empty.png", nil, Limits{}, ReasonSignature},
		{"header-cut.png", goodPNG[:20], Limits{}, ReasonTruncated},
		{"data-cut.png", goodPNG[:len(goodPNG)/2], Limits{}, ReasonTruncated},
		{"end-cut.png", goodPNG[:len(goodPNG)-6], Limits{}, ReasonTruncated},
		{"data-cut.jpg", goodJPEG[:len(goodJPEG)/2], Limits{}, ReasonTruncated},
		{"bad-crc.png", badCRC, Limits{}, ReasonCorrupt},
		{"garbage.jpg", append([]byte("\xff\xd8\xff"), bytes.Repeat([]byte{0x17}, 200)...), Limits{}, ReasonCorrupt},
		{"huge.png", hugePNGHeader(100000, 100000), Limits{}, ReasonTooLarge},
		{"pixels-over-limit.png", goodPNG, Limits{MaxPixels: 32*32 - 1}, ReasonTooLarge},
		{"bytes-over-limit.png", goodPNG, Limits{MaxFileBytes: int64(len(goodPNG)) - 1}, ReasonTooLarge},
		{"zero-width.png", hugePNGHeader(0, 10), Limits{}, ReasonCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, dir, tt.name, tt.data)
			img, err := LoadImage(os.DirFS(dir), tt.name, 16, tt.limits)
			if img != nil {
				t.Errorf("LoadImage returned an image for a rejected file")
			}
			var skip *SkipError
			if !errors.As(err, &skip) {
				t.Fatalf("error %v is not a *SkipError", err)
			}
			if skip.Reason != tt.want {
				t.Errorf("reason %q (%v), want %q", skip.Reason, err, tt.want)
			}
			if skip.Path != tt.name {
				t.Errorf("path %q, want %q", skip.Path, tt.name)
			}
		})
	}
}

func TestLoadImageAcceptsLimitExactly(t *testing.T) {
	dir := t.TempDir()
	data := encodePNG(t, uniformNRGBA(10, 10, color.NRGBA{1, 2, 3, 255}))
	writeFile(t, dir, "x.png", data)
	limits := Limits{MaxPixels: 100, MaxFileBytes: int64(len(data))}
	if _, err := LoadImage(os.DirFS(dir), "x.png", 10, limits); err != nil {
		t.Errorf("LoadImage at the limits: %v", err)
	}
}

func TestLoadImageInvalidSize(t *testing.T) {
	_, err := LoadImage(os.DirFS(t.TempDir()), "x.png", 0, Limits{})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("error %v, want ErrInvalidOptions", err)
	}
}
