package messages

import (
	"bytes"
	"errors"
	"testing"
)

// The seed corpus of every fuzz target is in testdata/fuzz/<target>/ and is
// written by TestFuzzSeedCorpus. Run a target with, for example:
//
//	go test ./messages -run '^$' -fuzz FuzzDecodePair -fuzztime 60s -parallel 1

var sentinels = []error{ErrMagic, ErrVersion, ErrTruncated, ErrTooLarge, ErrDimensions, ErrField, ErrMalformed}

// checkRejection fails unless err is a *FieldError that wraps exactly one sentinel.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var fieldErr *FieldError
	if !errors.As(err, &fieldErr) {
		t.Fatalf("error %T is not a *FieldError: %v", err, err)
	}
	matched := 0
	for _, sentinel := range sentinels {
		if errors.Is(err, sentinel) {
			matched++
		}
	}
	if matched != 1 {
		t.Fatalf("error wraps %d sentinel errors, want 1: %v", matched, err)
	}
}

func FuzzDecodePair(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := DecodePair(payload)
		if err != nil {
			if p != nil {
				t.Fatalf("DecodePair returned a pair with error %v", err)
			}
			checkRejection(t, err)
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded pair fails Validate: %v", err)
		}
		if p.EncodedSize() != len(payload) {
			t.Fatalf("EncodedSize = %d, payload has %d bytes", p.EncodedSize(), len(payload))
		}
		// The pair encoding is canonical: every field has one encoding, so a
		// decoded pair encodes to the bytes it came from.
		again, err := EncodePair(p)
		if err != nil {
			t.Fatalf("EncodePair of a decoded pair: %v", err)
		}
		if !bytes.Equal(again, payload) {
			t.Fatalf("re-encoded pair differs from the payload:\n got %q\nwant %q", again, payload)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := DecodeCheckpoint(payload)
		if err != nil {
			if c != nil {
				t.Fatalf("DecodeCheckpoint returned %+v with error %v", c, err)
			}
			checkRejection(t, err)
			return
		}
		encoded, err := EncodeCheckpoint(c)
		if err != nil {
			t.Fatalf("EncodeCheckpoint of a decoded announcement: %v", err)
		}
		again, err := DecodeCheckpoint(encoded)
		if err != nil {
			t.Fatalf("DecodeCheckpoint of re-encoded %s: %v", encoded, err)
		}
		if !checkpointsEqual(again, c) {
			t.Fatalf("re-encoded announcement differs:\n got %+v\nwant %+v", again, c)
		}
		reencoded, err := EncodeCheckpoint(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reencoded, encoded) {
			t.Fatalf("encoding is not stable:\n%s\n%s", encoded, reencoded)
		}
	})
}

func FuzzDecodeEvalReport(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeEvalReport(payload)
		if err != nil {
			if r != nil {
				t.Fatalf("DecodeEvalReport returned %+v with error %v", r, err)
			}
			checkRejection(t, err)
			return
		}
		encoded, err := EncodeEvalReport(r)
		if err != nil {
			t.Fatalf("EncodeEvalReport of a decoded report: %v", err)
		}
		again, err := DecodeEvalReport(encoded)
		if err != nil {
			t.Fatalf("DecodeEvalReport of re-encoded %s: %v", encoded, err)
		}
		if !evalReportsEqual(again, r) {
			t.Fatalf("re-encoded report differs:\n got %+v\nwant %+v", again, r)
		}
		reencoded, err := EncodeEvalReport(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reencoded, encoded) {
			t.Fatalf("encoding is not stable:\n%s\n%s", encoded, reencoded)
		}
	})
}
