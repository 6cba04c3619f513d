package messages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// testPixels returns height*width*3 bytes that differ from pixel to pixel
// and between A and B (seed), so a swapped or shifted image is detected.
func testPixels(height, width int, seed byte) []uint8 {
	pix := make([]uint8, height*width*Channels)
	for i := range pix {
		pix[i] = byte(i*7) + seed
	}
	return pix
}

func rawTestPair(height, width int) *Pair {
	return &Pair{
		Kind:       KindRaw,
		Run:        "emoji_test-1",
		Sequence:   1 << 40,
		Epoch:      3,
		NameA:      "1f600.png",
		NameB:      "1f601.png",
		Height:     height,
		Width:      width,
		LoadHeight: height,
		LoadWidth:  width,
		A:          testPixels(height, width, 0),
		B:          testPixels(height, width, 100),
	}
}

func trainTestPair() *Pair {
	return &Pair{
		Kind:       KindTrain,
		Run:        "r",
		Sequence:   42,
		Epoch:      0,
		NameA:      "",
		NameB:      "naïve.png",
		Height:     4,
		Width:      3,
		LoadHeight: 6,
		LoadWidth:  5,
		TransformA: Transform{CropX: 2, CropY: 0, Flipped: true},
		TransformB: Transform{CropX: 0, CropY: 2, Flipped: false},
		A:          testPixels(4, 3, 1),
		B:          testPixels(4, 3, 2),
	}
}

func TestPairRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		pair *Pair
	}{
		{"raw 1x1", rawTestPair(1, 1)},
		{"raw 72x72", rawTestPair(72, 72)},
		{"raw 3x5", rawTestPair(3, 5)},
		{"train cropped and flipped", trainTestPair()},
		{"train both flipped at max offset", func() *Pair {
			p := trainTestPair()
			p.TransformA = Transform{CropX: 2, CropY: 2, Flipped: true}
			p.TransformB = Transform{CropX: 2, CropY: 2, Flipped: true}
			return p
		}()},
		{"max run and names", func() *Pair {
			p := rawTestPair(2, 2)
			p.Run = strings.Repeat("a", MaxRunIDLength)
			p.NameA = strings.Repeat("é", MaxNameLength/2)
			p.NameB = strings.Repeat("b", MaxNameLength)
			p.Sequence = ^uint64(0)
			p.Epoch = ^uint32(0)
			return p
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := EncodePair(tc.pair)
			if err != nil {
				t.Fatalf("EncodePair: %v", err)
			}
			if len(payload) != tc.pair.EncodedSize() {
				t.Errorf("encoded %d bytes, EncodedSize returned %d", len(payload), tc.pair.EncodedSize())
			}
			if cap(payload) != len(payload) {
				t.Errorf("buffer capacity %d, want exactly the length %d", cap(payload), len(payload))
			}
			got, err := DecodePair(payload)
			if err != nil {
				t.Fatalf("DecodePair: %v", err)
			}
			if !reflect.DeepEqual(got, tc.pair) {
				t.Errorf("decoded pair differs:\n got %+v\nwant %+v", got, tc.pair)
			}
			again, err := EncodePair(got)
			if err != nil {
				t.Fatalf("EncodePair of the decoded pair: %v", err)
			}
			if !bytes.Equal(again, payload) {
				t.Error("re-encoding the decoded pair changed the bytes")
			}
		})
	}
}

// TestPairLayout pins the byte layout documented in README.md.
func TestPairLayout(t *testing.T) {
	p := &Pair{
		Kind:       KindTrain,
		Run:        "ab",
		Sequence:   0x0102030405060708,
		Epoch:      0x0a0b0c0d,
		NameA:      "x",
		NameB:      "yz",
		Height:     1,
		Width:      2,
		LoadHeight: 0x0103,
		LoadWidth:  0x0204,
		TransformA: Transform{CropX: 5, CropY: 6, Flipped: false},
		TransformB: Transform{CropX: 7, CropY: 8, Flipped: true},
		A:          []uint8{1, 2, 3, 4, 5, 6},
		B:          []uint8{7, 8, 9, 10, 11, 12},
	}
	want := []byte{
		'C', 'G', 'P', 'R', // magic
		1, 0, // version
		2,       // kind: train
		1,       // element type: uint8
		3,       // channels
		2, 1, 2, // lengths of run, name A, name B
		0x0d, 0x0c, 0x0b, 0x0a, // epoch
		8, 7, 6, 5, 4, 3, 2, 1, // sequence
		1, 0, 2, 0, // height, width
		0x03, 0x01, 0x04, 0x02, // load height, load width
		5, 0, 6, 0, // crop A x, y
		7, 0, 8, 0, // crop B x, y
		2,       // flips: bit 1, B flipped
		0, 0, 0, // reserved
		6, 0, 0, 0, // bytes per image
		'a', 'b', 'x', 'y', 'z',
		1, 2, 3, 4, 5, 6,
		7, 8, 9, 10, 11, 12,
	}
	got, err := EncodePair(p)
	if err != nil {
		t.Fatalf("EncodePair: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding differs:\n got %v\nwant %v", got, want)
	}
}

func TestDecodePairAliasesPayload(t *testing.T) {
	payload, err := EncodePair(rawTestPair(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePair(payload)
	if err != nil {
		t.Fatal(err)
	}
	clone := p.Clone()
	payload[len(payload)-1]++ // the last byte of B
	if p.B[len(p.B)-1] != payload[len(payload)-1] {
		t.Error("decoded B does not alias the payload")
	}
	if clone.B[len(clone.B)-1] == payload[len(payload)-1] {
		t.Error("Clone's B still aliases the payload")
	}
	if cap(p.A) != len(p.A) {
		t.Errorf("cap(A) = %d, want %d so that append cannot overwrite B", cap(p.A), len(p.A))
	}
	if cap(p.B) != len(p.B) {
		t.Errorf("cap(B) = %d, want %d", cap(p.B), len(p.B))
	}
}

func TestAppendPairReusesBuffer(t *testing.T) {
	p := rawTestPair(8, 8)
	buf := make([]byte, 0, p.EncodedSize())
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if buf, err = AppendPair(buf[:0], p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendPair into a large enough buffer allocated %.0f times, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(20, func() {
		if _, err := EncodePair(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("EncodePair allocated %.0f times, want 1 (the buffer)", allocs)
	}
}

func TestPairSizeAgainstMaxPayload(t *testing.T) {
	const defaultMaxPayload = 1 << 20 // bytes, the NATS server default

	reference := rawTestPair(286, 286)
	reference.Run = strings.Repeat("r", MaxRunIDLength)
	reference.NameA = strings.Repeat("a", MaxNameLength)
	reference.NameB = strings.Repeat("b", MaxNameLength)
	if err := CheckPayloadSize(reference.EncodedSize(), defaultMaxPayload); err != nil {
		t.Errorf("a 286x286 pair with the longest strings: %v", err)
	}
	if got, want := reference.EncodedSize(), 48+32+255+255+2*286*286*3; got != want {
		t.Errorf("EncodedSize = %d, want %d", got, want)
	}

	// The largest square pair that fits with the longest strings is 417x417.
	for side, fits := range map[int]bool{417: true, 418: false} {
		p := rawTestPair(side, side)
		p.Run, p.NameA, p.NameB = reference.Run, reference.NameA, reference.NameB
		err := CheckPayloadSize(p.EncodedSize(), defaultMaxPayload)
		if fits && err != nil {
			t.Errorf("a %dx%d pair: %v", side, side, err)
		}
		if !fits && !errors.Is(err, ErrPayloadTooLarge) {
			t.Errorf("a %dx%d pair: got %v, want ErrPayloadTooLarge", side, side, err)
		}
	}

	large := rawTestPair(512, 512)
	err := CheckPayloadSize(large.EncodedSize(), defaultMaxPayload)
	if !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("a 512x512 pair: got %v, want ErrPayloadTooLarge", err)
	}
	for _, size := range []string{"1572942", "1048576"} { // 48+12+9+9 header bytes, 2*512*512*3 pixels
		if !strings.Contains(err.Error(), size) {
			t.Errorf("error %q does not name the size %s", err, size)
		}
	}
	if err := CheckPayloadSize(1, 0); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("max payload 0 (unknown): got %v, want ErrPayloadTooLarge", err)
	}
}

// payloadEdit changes one encoded pair to make an invalid one.
type payloadEdit func(b []byte) []byte

func setByte(offset int, v byte) payloadEdit {
	return func(b []byte) []byte { b[offset] = v; return b }
}

func setUint16(offset int, v uint16) payloadEdit {
	return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[offset:], v); return b }
}

func setUint32(offset int, v uint32) payloadEdit {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offset:], v); return b }
}

func TestDecodePairRejects(t *testing.T) {
	// raw is rawTestPair(2, 3): run "emoji_test-1" starts at byte 48,
	// names "1f600.png" and "1f601.png" at 60 and 69, pixels at 78.
	raw, err := EncodePair(rawTestPair(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	// train is trainTestPair(): 4x3 cropped from 6x5.
	train, err := EncodePair(trainTestPair())
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		base  []byte
		edit  payloadEdit
		want  error
		field string
	}{
		{"empty payload", raw, func(b []byte) []byte { return b[:0] }, ErrTruncated, "magic and version"},
		{"magic only", raw, func(b []byte) []byte { return b[:4] }, ErrTruncated, "magic and version"},
		{"wrong magic", raw, setByte(0, 'X'), ErrMagic, "magic"},
		{"short wrong magic", raw, func(b []byte) []byte { return []byte("CX") }, ErrMagic, "magic"},
		{"JSON instead of a pair", raw, func(b []byte) []byte { return []byte(`{"version":1}`) }, ErrMagic, "magic"},
		{"version 0", raw, setUint16(offVersion, 0), ErrVersion, "version"},
		{"version 2", raw, setUint16(offVersion, 2), ErrVersion, "version"},
		{"fixed header truncated", raw, func(b []byte) []byte { return b[:PairHeaderSize-1] }, ErrTruncated, "header"},
		{"names truncated", raw, func(b []byte) []byte { return b[:PairHeaderSize+20] }, ErrTruncated, "header"},
		{"pixels truncated by one byte", raw, func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated, "pixels"},
		{"B missing", raw, func(b []byte) []byte { return b[:len(b)-18] }, ErrTruncated, "pixels"},
		{"one trailing byte", raw, func(b []byte) []byte { return append(b, 0) }, ErrTooLarge, "pixels"},
		{"third image appended", raw, func(b []byte) []byte { return append(b, make([]byte, 18)...) }, ErrTooLarge, "pixels"},
		{"kind 0", raw, setByte(offKind, 0), ErrField, "kind"},
		{"kind 3", raw, setByte(offKind, 3), ErrField, "kind"},
		{"element type float32", raw, setByte(offElement, 2), ErrField, "element type"},
		{"channels 4", raw, setByte(offChannels, 4), ErrDimensions, "channels"},
		{"channels 1", raw, setByte(offChannels, 1), ErrDimensions, "channels"},
		{"run length 0", raw, setByte(offRunLen, 0), ErrField, "run length"},
		{"run length 33", raw, setByte(offRunLen, 33), ErrField, "run length"},
		{"run id with a dot", raw, setByte(PairHeaderSize+5, '.'), ErrField, "run"},
		{"run id with a slash", raw, setByte(PairHeaderSize, '/'), ErrField, "run"},
		{"run id with a space", raw, setByte(PairHeaderSize+11, ' '), ErrField, "run"},
		{"name A with a newline", raw, setByte(60, '\n'), ErrField, "name A"},
		{"name B not UTF-8", raw, setByte(69, 0xff), ErrField, "name B"},
		{"height 0", raw, setUint16(offHeight, 0), ErrDimensions, "height"},
		{"width 4097", raw, setUint16(offWidth, 4097), ErrDimensions, "width"},
		{"height 65535", raw, setUint16(offHeight, 65535), ErrDimensions, "height"},
		{"load width 0", train, setUint16(offLoadWidth, 0), ErrDimensions, "load width"},
		{"load height 5000", train, setUint16(offLoadHeight, 5000), ErrDimensions, "load height"},
		{"image bytes not height*width*3", raw, setUint32(offImageBytes, 17), ErrDimensions, "image bytes"},
		{"image bytes 0", raw, setUint32(offImageBytes, 0), ErrDimensions, "image bytes"},
		{"height larger than the pixels", raw, func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[offHeight:], 3)
			binary.LittleEndian.PutUint16(b[offLoadHeight:], 3)
			binary.LittleEndian.PutUint32(b[offImageBytes:], 3*3*3)
			return b
		}, ErrTruncated, "pixels"},
		{"height smaller than the pixels", raw, func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[offHeight:], 1)
			binary.LittleEndian.PutUint16(b[offLoadHeight:], 1)
			binary.LittleEndian.PutUint32(b[offImageBytes:], 1*3*3)
			return b
		}, ErrTooLarge, "pixels"},
		{"flag bit 2", raw, setByte(offFlips, 4), ErrField, "flips"},
		{"reserved byte set", raw, setByte(offReserved+2, 1), ErrField, "reserved"},
		{"raw pair flipped", raw, setByte(offFlips, flipB), ErrField, "flip B"},
		{"raw pair cropped", raw, setUint16(offCropAX, 1), ErrDimensions, "crop A"},
		{"raw load size differs", raw, setUint16(offLoadWidth, 4), ErrDimensions, "load width"},
		{"crop x A past the right edge", train, setUint16(offCropAX, 3), ErrDimensions, "crop x A"},
		{"crop y B past the bottom edge", train, setUint16(offCropBY, 3), ErrDimensions, "crop y B"},
		{"crop x B far outside", train, setUint16(offCropBX, 65535), ErrDimensions, "crop x B"},
		{"train crop larger than load size", train, setUint16(offLoadWidth, 2), ErrDimensions, "crop x A"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload := tc.edit(bytes.Clone(tc.base))
			p, err := DecodePair(payload)
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodePair error = %v, want %v", err, tc.want)
			}
			if p != nil {
				t.Errorf("DecodePair returned a pair with error %v", err)
			}
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			if fieldErr.Field != tc.field {
				t.Errorf("error names field %q, want %q (%v)", fieldErr.Field, tc.field, err)
			}
		})
	}
}

func TestEncodePairRejects(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(p *Pair)
		want  error
		field string
	}{
		{"zero kind", func(p *Pair) { p.Kind = 0 }, ErrField, "kind"},
		{"empty run", func(p *Pair) { p.Run = "" }, ErrField, "run"},
		{"run of 33 bytes", func(p *Pair) { p.Run = strings.Repeat("x", 33) }, ErrField, "run"},
		{"run with a dot", func(p *Pair) { p.Run = "a.b" }, ErrField, "run"},
		{"run not ASCII", func(p *Pair) { p.Run = "é" }, ErrField, "run"},
		{"name of 256 bytes", func(p *Pair) { p.NameA = strings.Repeat("n", 256) }, ErrField, "name A"},
		{"name with DEL", func(p *Pair) { p.NameB = "a\x7fb" }, ErrField, "name B"},
		{"name with C1 control", func(p *Pair) { p.NameB = "a\u0085b" }, ErrField, "name B"},
		{"height 0", func(p *Pair) { p.Height = 0 }, ErrDimensions, "height"},
		{"width negative", func(p *Pair) { p.Width = -1 }, ErrDimensions, "width"},
		{"width 4097", func(p *Pair) { p.Width, p.LoadWidth = 4097, 4097 }, ErrDimensions, "width"},
		{"A one byte short", func(p *Pair) { p.A = p.A[:len(p.A)-1] }, ErrDimensions, "pixels A"},
		{"B missing", func(p *Pair) { p.B = nil }, ErrDimensions, "pixels B"},
		{"raw with a crop", func(p *Pair) { p.TransformB.CropY = 1 }, ErrDimensions, "crop B"},
		{"raw flipped", func(p *Pair) { p.TransformA.Flipped = true }, ErrField, "flip A"},
		{"raw load size differs", func(p *Pair) { p.LoadHeight = 9 }, ErrDimensions, "load height"},
		{"train negative crop", func(p *Pair) { p.Kind = KindTrain; p.TransformA.CropX = -1 }, ErrDimensions, "crop x A"},
		{"train crop past the edge", func(p *Pair) { p.Kind = KindTrain; p.LoadHeight = 4; p.TransformB.CropY = 2 }, ErrDimensions, "crop y B"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rawTestPair(3, 3)
			tc.edit(p)
			payload, err := EncodePair(p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("EncodePair error = %v, want %v", err, tc.want)
			}
			if payload != nil {
				t.Errorf("EncodePair returned %d bytes with error %v", len(payload), err)
			}
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			if fieldErr.Field != tc.field {
				t.Errorf("error names field %q, want %q (%v)", fieldErr.Field, tc.field, err)
			}
		})
	}
}

func TestFieldErrorText(t *testing.T) {
	p := rawTestPair(2, 2)
	p.Height = 0
	_, err := EncodePair(p)
	want := "messages: pair field height = 0: must be 1 to 4096 pixels: invalid dimensions"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}

	long := strings.Repeat("z", 1000)
	err = ValidateRunID(long)
	if err == nil {
		t.Fatal("ValidateRunID accepted a 1000-byte run id")
	}
	if len(err.Error()) > 300 {
		t.Errorf("error text is %d bytes long, want the value shortened: %v", len(err.Error()), err)
	}
}

func TestPairKindString(t *testing.T) {
	for kind, want := range map[PairKind]string{KindRaw: "raw", KindTrain: "train", 9: "unknown"} {
		if got := kind.String(); got != want {
			t.Errorf("PairKind(%d).String() = %q, want %q", kind, got, want)
		}
	}
}
