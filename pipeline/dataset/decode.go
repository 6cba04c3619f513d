package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode and image.DecodeConfig
	_ "image/png"  // registers the PNG decoder
	"io"
	"io/fs"

	"github.com/disintegration/imaging"
)

// Default limits on one input file.
const (
	// DefaultMaxPixels bounds the declared width×height of an image (40 megapixels). The
	// decoded source takes 4 to 8 bytes a pixel before it is resized.
	DefaultMaxPixels = 40_000_000
	// DefaultMaxFileBytes bounds the size of an image file (256 MiB).
	DefaultMaxFileBytes = 256 << 20
)

// signatureBytes is the number of leading bytes read to recognise a file type.
const signatureBytes = 8

// File signatures of the accepted formats.
var (
	pngSignature  = []byte("\x89PNG\r\n\x1a\n")
	jpegSignature = []byte("\xff\xd8\xff")
)

// Limits bound what the loader reads from one file. The zero value applies the defaults.
type Limits struct {
	// MaxPixels is the largest declared width×height accepted. 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxFileBytes is the largest file accepted, in bytes. 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return l.MaxPixels
}

func (l Limits) maxFileBytes() int64 {
	if l.MaxFileBytes <= 0 {
		return DefaultMaxFileBytes
	}
	return l.MaxFileBytes
}

// hasImageSignature reports whether head starts with the PNG or the JPEG signature.
func hasImageSignature(head []byte) bool {
	return bytes.HasPrefix(head, pngSignature) || bytes.HasPrefix(head, jpegSignature)
}

// End markers of complete files: the PNG IEND chunk (length 0, type, CRC) and the JPEG
// EOI marker.
var (
	pngEnd  = []byte("\x00\x00\x00\x00IEND\xaeB`\x82")
	jpegEnd = []byte("\xff\xd9")
)

// hasEndMarker reports whether data ends with the end marker of its format. Files with
// bytes after the marker exist, so this check only explains a failed decode.
func hasEndMarker(data []byte) bool {
	if bytes.HasPrefix(data, pngSignature) {
		return bytes.HasSuffix(data, pngEnd)
	}
	return bytes.HasSuffix(data, jpegEnd)
}

// classifyDecodeError maps a decoder error to ReasonTruncated when the data ended early
// and to ReasonCorrupt otherwise.
func classifyDecodeError(err error) SkipReason {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ReasonTruncated
	}
	return ReasonCorrupt
}

// checkHeader reads the image header from r and rejects a file whose declared size is
// empty or larger than limits allow. The returned reason is empty when the header is
// acceptable.
func checkHeader(r io.Reader, limits Limits) (image.Config, SkipReason, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		return cfg, classifyDecodeError(err), fmt.Errorf("read image header: %w", err)
	}
	if format != "png" && format != "jpeg" {
		return cfg, ReasonSignature, fmt.Errorf("format %q, want png or jpeg", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, ReasonCorrupt, fmt.Errorf("declared size %d×%d is empty", cfg.Width, cfg.Height)
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	if max := limits.maxPixels(); pixels > max {
		return cfg, ReasonTooLarge, fmt.Errorf("declared size %d×%d is %d pixels, limit %d",
			cfg.Width, cfg.Height, pixels, max)
	}
	return cfg, "", nil
}

// LoadImage reads the PNG or JPEG file at name in fsys, applies its EXIF orientation,
// flattens it to opaque RGB (see Flatten) and resizes it to size×size pixels with a
// Catmull-Rom (bicubic) filter. A file that cannot be used comes back as a *SkipError with
// the reason. LoadImage does not panic on malformed input.
func LoadImage(fsys fs.FS, name string, size int, limits Limits) (*image.NRGBA, error) {
	if size <= 0 {
		return nil, fmt.Errorf("load %s: size %d: %w", name, size, ErrInvalidOptions)
	}
	img, err := DecodeImage(fsys, name, limits)
	if err != nil {
		return nil, err
	}
	return resizeSquare(img, size), nil
}

// DecodeImage is LoadImage without the resize: the image keeps its stored size, as the
// evaluator and the translate command need.
func DecodeImage(fsys fs.FS, name string, limits Limits) (*image.NRGBA, error) {
	data, skip := readImageFile(fsys, name, limits)
	if skip != nil {
		return nil, skip
	}
	img, reason, err := decode(data, limits)
	if err != nil {
		return nil, &SkipError{Path: name, Reason: reason, Err: err}
	}
	return img, nil
}

// readImageFile reads a whole file after checking its size and signature.
func readImageFile(fsys fs.FS, name string, limits Limits) ([]byte, *SkipError) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	if !info.Mode().IsRegular() {
		return nil, &SkipError{Path: name, Reason: ReasonNotRegular, Err: fmt.Errorf("mode %v", info.Mode())}
	}
	maxBytes := limits.maxFileBytes()
	if info.Size() > maxBytes {
		return nil, &SkipError{Path: name, Reason: ReasonTooLarge,
			Err: fmt.Errorf("file is %d bytes, limit %d", info.Size(), maxBytes)}
	}

	// The limit guards against a file that grows after Stat.
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	if int64(len(data)) > maxBytes {
		return nil, &SkipError{Path: name, Reason: ReasonTooLarge,
			Err: fmt.Errorf("file is over the limit of %d bytes", maxBytes)}
	}
	if !hasImageSignature(data) {
		return nil, &SkipError{Path: name, Reason: ReasonSignature, Err: errNoSignature}
	}
	return data, nil
}

var errNoSignature = errors.New("file starts with neither the PNG nor the JPEG signature")

// decode checks the header against limits, then decodes data with its EXIF orientation
// applied and flattens it.
//
// No recover is needed here: data reaches only the standard library's PNG and JPEG
// decoders (the signature check keeps it from the GIF, BMP and TIFF decoders that
// imaging registers), and those return errors on malformed input. The EXIF reader in
// imaging runs in its own goroutine, so a recover here could not catch a panic there.
func decode(data []byte, limits Limits) (*image.NRGBA, SkipReason, error) {
	if _, reason, err := checkHeader(bytes.NewReader(data), limits); err != nil {
		return nil, reason, err
	}
	img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		reason := classifyDecodeError(err)
		// The PNG decoder reports data cut inside the pixel stream as a format error
		// ("not enough pixel data"), so a missing end marker also counts as truncation.
		if !hasEndMarker(data) {
			reason = ReasonTruncated
		}
		return nil, reason, fmt.Errorf("decode image: %w", err)
	}
	return Flatten(img), "", nil
}

// resizeSquare resizes img to size×size, stretching a non-square image as the reference
// CycleGAN does (its resize_and_crop option resizes to [load_size, load_size]). Smaller
// images are scaled up.
func resizeSquare(img *image.NRGBA, size int) *image.NRGBA {
	b := img.Bounds()
	if b.Dx() == size && b.Dy() == size {
		return img
	}
	out := imaging.Resize(img, size, size, imaging.CatmullRom)
	// The source is opaque, so every output alpha is already 255. Setting it again keeps
	// the opaque invariant independent of how imaging rounds.
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 0xff
	}
	return out
}

// Flatten converts any image to 8-bit RGB held in an *image.NRGBA whose alpha is 255
// everywhere, with bounds starting at (0, 0).
//
// Each pixel is taken as 16-bit premultiplied RGBA (the color.Color contract), composited
// onto white (c + (0xffff − a)), and reduced to 8 bits by dropping the low byte (c >> 8).
// So 16-bit images are scaled, not clipped, and transparent areas become white. Gray,
// paletted, CMYK and YCbCr images go through their colour model's conversion.
func Flatten(src image.Image) *image.NRGBA {
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))

	if nrgba, ok := src.(*image.NRGBA); ok && nrgba.Opaque() {
		for y := 0; y < b.Dy(); y++ {
			row := nrgba.Pix[nrgba.PixOffset(b.Min.X, b.Min.Y+y):]
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*b.Dx()], row[:4*b.Dx()])
		}
		return dst
	}

	// RGBA64At avoids an allocation per pixel, and every image type of the standard
	// library implements it.
	rgba64, hasRGBA64 := src.(image.RGBA64Image)
	for y := 0; y < b.Dy(); y++ {
		i := y * dst.Stride
		for x := 0; x < b.Dx(); x++ {
			var c color.RGBA64
			if hasRGBA64 {
				c = rgba64.RGBA64At(b.Min.X+x, b.Min.Y+y)
			} else {
				r, g, bl, a := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
				c = color.RGBA64{R: uint16(r), G: uint16(g), B: uint16(bl), A: uint16(a)}
			}
			white := 0xffff - uint32(c.A)
			dst.Pix[i+0] = onWhite(c.R, white)
			dst.Pix[i+1] = onWhite(c.G, white)
			dst.Pix[i+2] = onWhite(c.B, white)
			dst.Pix[i+3] = 0xff
			i += 4
		}
	}
	return dst
}

// onWhite composites a 16-bit premultiplied channel value onto white and returns its high
// byte. The clamp matters only for a colour that breaks the premultiplied contract (c > a).
func onWhite(c uint16, white uint32) uint8 {
	return uint8(min(uint32(c)+white, 0xffff) >> 8)
}
