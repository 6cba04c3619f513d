package messages

import (
	"image"
	"image/color"
	"math"
	"slices"
)

// Conversions between the pair's pixel layout (8-bit RGB, row-major,
// interleaved channels: HWC) and the forms the stages use: image.Image for
// decoding and writing files, float32 CHW in [-1, 1] for the networks.

// checkHWC validates the size of an HWC buffer for the conversion helpers.
func checkHWC(field string, length, height, width int) error {
	if height < 1 || height > MaxImageSide {
		return fieldError("image", "height", height, ErrDimensions, "must be 1 to %d pixels", MaxImageSide)
	}
	if width < 1 || width > MaxImageSide {
		return fieldError("image", "width", width, ErrDimensions, "must be 1 to %d pixels", MaxImageSide)
	}
	if length != height*width*Channels {
		return fieldError("image", field, length, ErrDimensions,
			"length must be height*width*3 = %d*%d*3 = %d", height, width, height*width*Channels)
	}
	return nil
}

// NRGBAFromHWC copies an HWC RGB image into a new opaque *image.NRGBA with
// bounds (0, 0)-(width, height).
func NRGBAFromHWC(pix []uint8, height, width int) (*image.NRGBA, error) {
	if err := checkHWC("pixels", len(pix), height, width); err != nil {
		return nil, err
	}
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for i, j := 0, 0; i < len(pix); i, j = i+Channels, j+4 {
		img.Pix[j+0] = pix[i+0]
		img.Pix[j+1] = pix[i+1]
		img.Pix[j+2] = pix[i+2]
		img.Pix[j+3] = 0xff
	}
	return img, nil
}

// AppendHWCFromImage appends the pixels of img in HWC RGB order to dst and
// returns the extended slice, img.Bounds().Dy() rows of img.Bounds().Dx()
// pixels. Transparent pixels are composited over background, which is used as
// an opaque color (color.White suits emoji). The result is the same for every
// image type: each channel is c + bg*(1-a) in the 16-bit premultiplied values
// that color.Color.RGBA returns, shifted right by 8 bits. *image.NRGBA and
// *image.RGBA take a fast path that computes the same values.
func AppendHWCFromImage(dst []uint8, img image.Image, background color.Color) ([]uint8, error) {
	bounds := img.Bounds()
	height, width := bounds.Dy(), bounds.Dx()
	if err := checkHWC("pixels", height*width*Channels, height, width); err != nil {
		return dst, err
	}
	bgR, bgG, bgB, _ := background.RGBA()
	dst = slices.Grow(dst, height*width*Channels)

	switch src := img.(type) {
	case *image.NRGBA:
		for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
			row := src.Pix[src.PixOffset(bounds.Min.X, y):]
			for x := 0; x < width; x++ {
				px := row[x*4 : x*4+4 : x*4+4]
				a := uint32(px[3]) * 0x101
				dst = append(dst,
					over(uint32(px[0])*0x101*a/0xffff, a, bgR),
					over(uint32(px[1])*0x101*a/0xffff, a, bgG),
					over(uint32(px[2])*0x101*a/0xffff, a, bgB))
			}
		}
	case *image.RGBA:
		for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
			row := src.Pix[src.PixOffset(bounds.Min.X, y):]
			for x := 0; x < width; x++ {
				px := row[x*4 : x*4+4 : x*4+4]
				a := uint32(px[3]) * 0x101
				dst = append(dst,
					over(uint32(px[0])*0x101, a, bgR),
					over(uint32(px[1])*0x101, a, bgG),
					over(uint32(px[2])*0x101, a, bgB))
			}
		}
	default:
		for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
			for x := bounds.Min.X; x < bounds.Max.X; x++ {
				r, g, b, a := img.At(x, y).RGBA()
				dst = append(dst, over(r, a, bgR), over(g, a, bgG), over(b, a, bgB))
			}
		}
	}
	return dst, nil
}

// over composites one premultiplied 16-bit channel c of alpha a over the
// background channel bg and returns the 8-bit result.
func over(c, a, bg uint32) uint8 {
	v := c + bg*(0xffff-a)/0xffff
	return uint8(min(v, 0xffff) >> 8)
}

// AppendFloat32CHW appends an HWC RGB image to dst as float32 in CHW order
// (all red samples, then green, then blue), each sample scaled by
// v/127.5 - 1 into [-1, 1], the input range of the generators. A trainer
// builds an [N, 3, H, W] batch by appending N images to one slice.
func AppendFloat32CHW(dst []float32, pix []uint8, height, width int) ([]float32, error) {
	if err := checkHWC("pixels", len(pix), height, width); err != nil {
		return dst, err
	}
	plane := height * width
	start := len(dst)
	dst = slices.Grow(dst, Channels*plane)[:start+Channels*plane]
	out := dst[start:]
	for i := 0; i < plane; i++ {
		out[i] = float32(pix[i*Channels])/127.5 - 1
		out[plane+i] = float32(pix[i*Channels+1])/127.5 - 1
		out[2*plane+i] = float32(pix[i*Channels+2])/127.5 - 1
	}
	return dst, nil
}

// AppendUint8HWC appends a float32 CHW image in [-1, 1], a generator's
// output, to dst as HWC RGB bytes: round((v+1)*127.5), clamped to 0..255.
// It is the inverse of AppendFloat32CHW for every byte value. A NaN or
// infinite sample is rejected with ErrField, because it means the network
// diverged.
func AppendUint8HWC(dst []uint8, chw []float32, height, width int) ([]uint8, error) {
	if err := checkHWC("samples", len(chw), height, width); err != nil {
		return dst, err
	}
	for i, v := range chw {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return dst, fieldError("image", "samples", v, ErrField, "sample %d is not finite", i)
		}
	}
	plane := height * width
	dst = slices.Grow(dst, Channels*plane)
	for i := 0; i < plane; i++ {
		dst = append(dst, toUint8(chw[i]), toUint8(chw[plane+i]), toUint8(chw[2*plane+i]))
	}
	return dst, nil
}

func toUint8(v float32) uint8 {
	scaled := math.Round((float64(v) + 1) * 127.5)
	return uint8(min(max(scaled, 0), 255))
}

// AppendCropFlip appends to dst the crop of an HWC RGB image of srcHeight by
// srcWidth pixels that starts at (t.CropX, t.CropY) and is height by width
// pixels, mirrored left to right when t.Flipped. This is how an augmenter
// turns a raw image into a train image, and what a train pair's Transform
// records.
func AppendCropFlip(dst, src []uint8, srcHeight, srcWidth, height, width int, t Transform) ([]uint8, error) {
	if err := checkHWC("source pixels", len(src), srcHeight, srcWidth); err != nil {
		return dst, err
	}
	if err := checkHWC("pixels", height*width*Channels, height, width); err != nil {
		return dst, err
	}
	if t.CropX < 0 || t.CropX > srcWidth-width {
		return dst, fieldError("image", "crop x", t.CropX, ErrDimensions,
			"a crop of width %d must start at 0 to %d in a width of %d", width, srcWidth-width, srcWidth)
	}
	if t.CropY < 0 || t.CropY > srcHeight-height {
		return dst, fieldError("image", "crop y", t.CropY, ErrDimensions,
			"a crop of height %d must start at 0 to %d in a height of %d", height, srcHeight-height, srcHeight)
	}
	dst = slices.Grow(dst, height*width*Channels)
	rowBytes := width * Channels
	for y := 0; y < height; y++ {
		start := ((t.CropY+y)*srcWidth + t.CropX) * Channels
		row := src[start : start+rowBytes]
		if !t.Flipped {
			dst = append(dst, row...)
			continue
		}
		for x := width - 1; x >= 0; x-- {
			dst = append(dst, row[x*Channels:x*Channels+Channels]...)
		}
	}
	return dst, nil
}
