package messages

import (
	"encoding/binary"
	"slices"
)

// Pair format constants. README.md in this directory documents the layout byte
// by byte.
const (
	// PairVersion is the pair format version that this package writes and reads.
	PairVersion = 1
	// PairHeaderSize is the size in bytes of the fixed part of the pair header.
	// The run id and the two image names follow it.
	PairHeaderSize = 48
	// MaxImageSide is the maximum height or width in pixels of an image in a pair.
	MaxImageSide = 4096
	// MaxNameLength is the maximum length in bytes of an image name.
	MaxNameLength = 255
	// Channels is the number of channels per pixel: red, green, blue.
	Channels = 3
	// ElementUint8 is the element type code of 8-bit unsigned samples, the only
	// element type of version 1.
	ElementUint8 = 1
)

// pairMagic opens every pair payload.
var pairMagic = [4]byte{'C', 'G', 'P', 'R'}

// Byte offsets of the fixed header fields. All integers are little-endian.
const (
	offMagic      = 0  // [4]byte "CGPR"
	offVersion    = 4  // uint16
	offKind       = 6  // uint8
	offElement    = 7  // uint8
	offChannels   = 8  // uint8
	offRunLen     = 9  // uint8
	offNameALen   = 10 // uint8
	offNameBLen   = 11 // uint8
	offEpoch      = 12 // uint32
	offSequence   = 16 // uint64
	offHeight     = 24 // uint16
	offWidth      = 26 // uint16
	offLoadHeight = 28 // uint16
	offLoadWidth  = 30 // uint16
	offCropAX     = 32 // uint16
	offCropAY     = 34 // uint16
	offCropBX     = 36 // uint16
	offCropBY     = 38 // uint16
	offFlips      = 40 // uint8: bit 0 A flipped, bit 1 B flipped
	offReserved   = 41 // [3]byte, zero
	offImageBytes = 44 // uint32: bytes of one image, height*width*channels
)

const (
	flipA = 1 << 0
	flipB = 1 << 1
)

// PairKind distinguishes raw pairs from train pairs.
type PairKind uint8

const (
	// KindRaw is a pair sent by the loader to the augmenters: both images
	// resized to the load size, neither cropped nor flipped.
	KindRaw PairKind = 1
	// KindTrain is a pair sent by an augmenter to the trainer: both images
	// cropped to the crop size and possibly flipped.
	KindTrain PairKind = 2
)

func (k PairKind) String() string {
	switch k {
	case KindRaw:
		return "raw"
	case KindTrain:
		return "train"
	default:
		return "unknown"
	}
}

// Transform is the augmentation applied to one image of a train pair. The
// image is cropped first, then mirrored, as AppendCropFlip does.
type Transform struct {
	CropX, CropY int  // top-left corner of the crop in the load-size image, in pixels
	Flipped      bool // mirrored left to right after cropping
}

// Pair is one unaligned pair: image A from domain A and image B from domain B,
// both 8-bit RGB of the same size. Pixels are stored row-major with
// interleaved channels (HWC): the byte at (y*Width+x)*3+c is channel c (0 red,
// 1 green, 2 blue) of the pixel in row y, column x, with row 0 at the top.
type Pair struct {
	Kind     PairKind
	Run      string // run id, [A-Za-z0-9_-]{1,32}
	Sequence uint64 // the loader's message counter within the run
	Epoch    uint32 // the loader's pass over the dataset, for logs only (the trainer computes its own epoch)

	// Source file names of the two images inside trainA and trainB, for logs.
	// Each is at most 255 bytes of UTF-8 without control characters, and may be empty.
	NameA, NameB string

	// Height and Width are the size of both images in pixels, 1 to 4096.
	Height, Width int
	// LoadHeight and LoadWidth are the size in pixels the loader resized both
	// images to. In a raw pair they equal Height and Width. A train pair was
	// cropped from images of this size.
	LoadHeight, LoadWidth int
	// TransformA and TransformB are zero in a raw pair.
	TransformA, TransformB Transform

	A, B []uint8 // pixels, Height*Width*3 bytes each
}

// ImageBytes returns the number of bytes of one image of the pair: Height*Width*3.
func (p *Pair) ImageBytes() int {
	return p.Height * p.Width * Channels
}

// EncodedSize returns the size in bytes of the encoded pair without encoding
// it, for CheckPayloadSize. It is exact for every pair that Validate accepts.
func (p *Pair) EncodedSize() int {
	return PairHeaderSize + len(p.Run) + len(p.NameA) + len(p.NameB) + len(p.A) + len(p.B)
}

// Validate returns an error wrapping ErrField or ErrDimensions for the first
// field that breaks a rule of the pair format.
func (p *Pair) Validate() error {
	if err := p.validateHeader(); err != nil {
		return err
	}
	if len(p.A) != p.ImageBytes() {
		return fieldError("pair", "pixels A", len(p.A), ErrDimensions,
			"length must be height*width*3 = %d", p.ImageBytes())
	}
	if len(p.B) != p.ImageBytes() {
		return fieldError("pair", "pixels B", len(p.B), ErrDimensions,
			"length must be height*width*3 = %d", p.ImageBytes())
	}
	return nil
}

// validateHeader checks every field except the pixel slices.
func (p *Pair) validateHeader() error {
	if p.Kind != KindRaw && p.Kind != KindTrain {
		return fieldError("pair", "kind", uint8(p.Kind), ErrField,
			"must be %d (raw) or %d (train)", KindRaw, KindTrain)
	}
	if err := validateRunID("pair", "run", p.Run); err != nil {
		return err
	}
	if err := validateText("pair", "name A", p.NameA, MaxNameLength); err != nil {
		return err
	}
	if err := validateText("pair", "name B", p.NameB, MaxNameLength); err != nil {
		return err
	}
	sides := []struct {
		field string
		value int
	}{
		{"height", p.Height},
		{"width", p.Width},
		{"load height", p.LoadHeight},
		{"load width", p.LoadWidth},
	}
	for _, side := range sides {
		if side.value < 1 || side.value > MaxImageSide {
			return fieldError("pair", side.field, side.value, ErrDimensions,
				"must be 1 to %d pixels", MaxImageSide)
		}
	}
	if p.Kind == KindRaw {
		return p.validateRaw()
	}
	if err := p.validateCrop("A", p.TransformA); err != nil {
		return err
	}
	return p.validateCrop("B", p.TransformB)
}

func (p *Pair) validateRaw() error {
	if p.LoadHeight != p.Height {
		return fieldError("pair", "load height", p.LoadHeight, ErrDimensions,
			"a raw pair's load height must equal its height %d", p.Height)
	}
	if p.LoadWidth != p.Width {
		return fieldError("pair", "load width", p.LoadWidth, ErrDimensions,
			"a raw pair's load width must equal its width %d", p.Width)
	}
	transforms := []struct {
		image string
		t     Transform
	}{{"A", p.TransformA}, {"B", p.TransformB}}
	for _, tr := range transforms {
		if tr.t.CropX != 0 || tr.t.CropY != 0 {
			return fieldError("pair", "crop "+tr.image, [2]int{tr.t.CropX, tr.t.CropY}, ErrDimensions,
				"a raw pair is not cropped, the offset must be [0 0]")
		}
		if tr.t.Flipped {
			return fieldError("pair", "flip "+tr.image, true, ErrField, "a raw pair is not flipped")
		}
	}
	return nil
}

func (p *Pair) validateCrop(image string, t Transform) error {
	if t.CropX < 0 || t.CropX > p.LoadWidth-p.Width {
		return fieldError("pair", "crop x "+image, t.CropX, ErrDimensions,
			"a crop of width %d must start at 0 to %d in a load width of %d",
			p.Width, p.LoadWidth-p.Width, p.LoadWidth)
	}
	if t.CropY < 0 || t.CropY > p.LoadHeight-p.Height {
		return fieldError("pair", "crop y "+image, t.CropY, ErrDimensions,
			"a crop of height %d must start at 0 to %d in a load height of %d",
			p.Height, p.LoadHeight-p.Height, p.LoadHeight)
	}
	return nil
}

// Clone returns a deep copy of the pair, so it stays valid after the payload
// it was decoded from is reused.
func (p *Pair) Clone() *Pair {
	c := *p
	c.A = slices.Clone(p.A)
	c.B = slices.Clone(p.B)
	return &c
}

// EncodePair validates the pair and returns its encoding in a new buffer of
// exactly p.EncodedSize() bytes.
func EncodePair(p *Pair) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return AppendPair(make([]byte, 0, p.EncodedSize()), p)
}

// AppendPair validates the pair and appends its encoding to dst, so a
// publisher can reuse one buffer for every message. On error dst is returned
// unchanged.
func AppendPair(dst []byte, p *Pair) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, p.EncodedSize())
	le := binary.LittleEndian

	dst = append(dst, pairMagic[:]...)
	dst = le.AppendUint16(dst, PairVersion)
	dst = append(dst, uint8(p.Kind), ElementUint8, Channels,
		uint8(len(p.Run)), uint8(len(p.NameA)), uint8(len(p.NameB)))
	dst = le.AppendUint32(dst, p.Epoch)
	dst = le.AppendUint64(dst, p.Sequence)
	// Validate bounds every size and offset to 0..4096, so they fit uint16.
	for _, v := range []int{
		p.Height, p.Width, p.LoadHeight, p.LoadWidth,
		p.TransformA.CropX, p.TransformA.CropY, p.TransformB.CropX, p.TransformB.CropY,
	} {
		dst = le.AppendUint16(dst, uint16(v))
	}
	var flips uint8
	if p.TransformA.Flipped {
		flips |= flipA
	}
	if p.TransformB.Flipped {
		flips |= flipB
	}
	dst = append(dst, flips, 0, 0, 0)
	dst = le.AppendUint32(dst, uint32(p.ImageBytes()))

	dst = append(dst, p.Run...)
	dst = append(dst, p.NameA...)
	dst = append(dst, p.NameB...)
	dst = append(dst, p.A...)
	dst = append(dst, p.B...)
	return dst, nil
}

// DecodePair decodes and validates a pair payload. The pixel slices A and B
// of the result alias payload (no copy), so the caller must not modify or
// reuse payload while it uses the pair, or must call Clone first. The
// slices' capacities end at their lengths, so appending to A never
// overwrites B. Strings are copied.
//
// Errors wrap ErrMagic, ErrVersion, ErrTruncated, ErrTooLarge, ErrDimensions
// or ErrField.
func DecodePair(payload []byte) (*Pair, error) {
	if err := checkPairPrefix(payload); err != nil {
		return nil, err
	}
	if len(payload) < PairHeaderSize {
		return nil, fieldError("pair", "header", len(payload), ErrTruncated,
			"payload length must be at least the %d-byte fixed header", PairHeaderSize)
	}
	le := binary.LittleEndian

	if payload[offElement] != ElementUint8 {
		return nil, fieldError("pair", "element type", payload[offElement], ErrField,
			"must be %d (uint8)", ElementUint8)
	}
	if payload[offChannels] != Channels {
		return nil, fieldError("pair", "channels", payload[offChannels], ErrDimensions,
			"must be %d (RGB)", Channels)
	}
	flips := payload[offFlips]
	if flips&^(flipA|flipB) != 0 {
		return nil, fieldError("pair", "flips", flips, ErrField, "only bits 0 and 1 may be set")
	}
	for i := offReserved; i < offImageBytes; i++ {
		if payload[i] != 0 {
			return nil, fieldError("pair", "reserved", payload[offReserved:offImageBytes], ErrField,
				"must be zero")
		}
	}
	runLen := int(payload[offRunLen])
	if runLen == 0 || runLen > MaxRunIDLength {
		return nil, fieldError("pair", "run length", runLen, ErrField, "must be 1 to %d", MaxRunIDLength)
	}
	nameALen := int(payload[offNameALen])
	nameBLen := int(payload[offNameBLen])
	headerEnd := PairHeaderSize + runLen + nameALen + nameBLen
	if len(payload) < headerEnd {
		return nil, fieldError("pair", "header", len(payload), ErrTruncated,
			"payload length must be at least %d, the header with its run id and names", headerEnd)
	}

	names := payload[PairHeaderSize:headerEnd]
	p := &Pair{
		Kind:       PairKind(payload[offKind]),
		Run:        string(names[:runLen]),
		NameA:      string(names[runLen : runLen+nameALen]),
		NameB:      string(names[runLen+nameALen:]),
		Epoch:      le.Uint32(payload[offEpoch:]),
		Sequence:   le.Uint64(payload[offSequence:]),
		Height:     int(le.Uint16(payload[offHeight:])),
		Width:      int(le.Uint16(payload[offWidth:])),
		LoadHeight: int(le.Uint16(payload[offLoadHeight:])),
		LoadWidth:  int(le.Uint16(payload[offLoadWidth:])),
		TransformA: Transform{
			CropX:   int(le.Uint16(payload[offCropAX:])),
			CropY:   int(le.Uint16(payload[offCropAY:])),
			Flipped: flips&flipA != 0,
		},
		TransformB: Transform{
			CropX:   int(le.Uint16(payload[offCropBX:])),
			CropY:   int(le.Uint16(payload[offCropBY:])),
			Flipped: flips&flipB != 0,
		},
	}
	if err := p.validateHeader(); err != nil {
		return nil, err
	}

	imageBytes := int(le.Uint32(payload[offImageBytes:]))
	if imageBytes != p.ImageBytes() {
		return nil, fieldError("pair", "image bytes", imageBytes, ErrDimensions,
			"must be height*width*3 = %d*%d*3 = %d", p.Height, p.Width, p.ImageBytes())
	}
	total := headerEnd + 2*imageBytes
	if len(payload) < total {
		return nil, fieldError("pair", "pixels", len(payload), ErrTruncated,
			"payload length must be %d: the header and two images of %d bytes", total, imageBytes)
	}
	if len(payload) > total {
		return nil, fieldError("pair", "pixels", len(payload), ErrTooLarge,
			"payload length must be %d: the header and two images of %d bytes", total, imageBytes)
	}
	p.A = payload[headerEnd : headerEnd+imageBytes : headerEnd+imageBytes]
	p.B = payload[headerEnd+imageBytes : total : total]
	return p, nil
}

// checkPairPrefix checks the magic and the version, the only fields whose
// position no future version may change.
func checkPairPrefix(payload []byte) error {
	n := min(len(payload), len(pairMagic))
	if string(payload[:n]) != string(pairMagic[:n]) {
		return fieldError("pair", "magic", payload[:n], ErrMagic, "must be %q", pairMagic[:])
	}
	if len(payload) < offVersion+2 {
		return fieldError("pair", "magic and version", len(payload), ErrTruncated,
			"payload length must be at least %d", offVersion+2)
	}
	version := binary.LittleEndian.Uint16(payload[offVersion:])
	if version != PairVersion {
		return fieldError("pair", "version", version, ErrVersion, "this decoder reads version %d", PairVersion)
	}
	return nil
}
