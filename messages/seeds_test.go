package messages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the fuzz seed corpus to testdata/fuzz instead of checking it")

// fuzzSeed is one file of a fuzz target's seed corpus, with the result the
// decoder must give for it: nil for a valid message, else the sentinel error.
type fuzzSeed struct {
	target  string
	name    string
	payload []byte
	want    error
}

func pairSeeds(t *testing.T) []fuzzSeed {
	encode := func(p *Pair) []byte {
		payload, err := EncodePair(p)
		if err != nil {
			t.Fatal(err)
		}
		return payload
	}
	raw := encode(rawTestPair(2, 3))
	edited := func(edit payloadEdit) []byte { return edit(bytes.Clone(raw)) }
	seed := func(name string, payload []byte, want error) fuzzSeed {
		return fuzzSeed{"FuzzDecodePair", name, payload, want}
	}
	return []fuzzSeed{
		seed("valid-raw-2x3", raw, nil),
		seed("valid-raw-1x1", encode(rawTestPair(1, 1)), nil),
		seed("valid-train-4x3-from-6x5", encode(trainTestPair()), nil),
		seed("empty", nil, ErrTruncated),
		seed("wrong-magic", edited(setByte(0, 'X')), ErrMagic),
		seed("version-2", edited(setUint16(offVersion, 2)), ErrVersion),
		seed("header-truncated", raw[:PairHeaderSize-1], ErrTruncated),
		seed("pixels-truncated", raw[:len(raw)-1], ErrTruncated),
		seed("trailing-byte", append(bytes.Clone(raw), 0), ErrTooLarge),
		seed("height-0", edited(setUint16(offHeight, 0)), ErrDimensions),
		seed("width-4097", edited(setUint16(offWidth, 4097)), ErrDimensions),
		seed("channels-4", edited(setByte(offChannels, 4)), ErrDimensions),
		seed("image-bytes-mismatch", edited(setUint32(offImageBytes, 19)), ErrDimensions),
		seed("kind-3", edited(setByte(offKind, 3)), ErrField),
		seed("run-with-dot", edited(setByte(PairHeaderSize+1, '.')), ErrField),
		seed("raw-flipped", edited(setByte(offFlips, flipA)), ErrField),
		seed("crop-outside", func() []byte {
			b := encode(trainTestPair())
			binary.LittleEndian.PutUint16(b[offCropAX:], 3)
			return b
		}(), ErrDimensions),
	}
}

func checkpointSeeds(t *testing.T) []fuzzSeed {
	c := testCheckpoint()
	c.Step, c.Epoch, c.Object = 0, 0, "emoji/step-0.safetensors"
	step0, err := EncodeCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	base := validCheckpointJSON
	seed := func(name, payload string, want error) fuzzSeed {
		return fuzzSeed{"FuzzDecodeCheckpoint", name, []byte(payload), want}
	}
	return []fuzzSeed{
		seed("valid", base, nil),
		seed("valid-step-0", string(step0), nil),
		seed("valid-spaced", strings.ReplaceAll(strings.ReplaceAll(base, ",", ",\n  "), `":`, `": `), nil),
		seed("empty", "", ErrMalformed),
		seed("version-2", replaceOnce(t, base, `"version":1`, `"version":2`), ErrVersion),
		seed("duplicate-key", replaceOnce(t, base, `"epoch":1`, `"epoch":1,"epoch":1`), ErrField),
		seed("size-NaN", replaceOnce(t, base, "45301234", "NaN"), ErrMalformed),
		seed("digest-upper-case", replaceOnce(t, base, testDigest, strings.ToUpper(testDigest)), ErrField),
		seed("created-not-UTC", replaceOnce(t, base, "05.5Z", "05.5+01:00"), ErrField),
		seed("object-mismatch", replaceOnce(t, base, "step-2000", "step-1"), ErrField),
		seed("trailing-data", base+"{}", ErrMalformed),
	}
}

func evalReportSeeds(t *testing.T) []fuzzSeed {
	r := testEvalReport()
	delete(r.Metrics, MetricL1AB)
	delete(r.Metrics, MetricL1BA)
	delete(r.Metrics, MetricL1Baseline)
	r.Samples = nil
	unpaired, err := EncodeEvalReport(r)
	if err != nil {
		t.Fatal(err)
	}
	base := validEvalReportJSON
	seed := func(name, payload string, want error) fuzzSeed {
		return fuzzSeed{"FuzzDecodeEvalReport", name, []byte(payload), want}
	}
	return []fuzzSeed{
		seed("valid", base, nil),
		seed("valid-unpaired-no-samples", string(unpaired), nil),
		seed("valid-spaced", " \n"+strings.ReplaceAll(strings.ReplaceAll(base, ",", ",\n  "), `":`, "\":\t ")+"\n", nil),
		seed("empty", "", ErrMalformed),
		seed("version-2", replaceOnce(t, base, `"version":1`, `"version":2`), ErrVersion),
		seed("metric-NaN", replaceOnce(t, base, "1.25", "NaN"), ErrMalformed),
		seed("metric-overflow", replaceOnce(t, base, "1.25", "1e999"), ErrField),
		seed("metric-negative", replaceOnce(t, base, "1.25", "-1"), ErrField),
		seed("metric-unknown", replaceOnce(t, base, `"swd_BA"`, `"fid":1,"swd_BA"`), ErrField),
		seed("metric-missing", replaceOnce(t, base, `"swd_BA":1.25,`, ""), ErrField),
		seed("sample-newline", replaceOnce(t, base, "samples/step", `samples\nstep`), ErrField),
		seed("samples-null", replaceOnce(t, base, `["out/emoji/samples/step-2000.png"]`, "null"), ErrField),
	}
}

func decodeSeed(s fuzzSeed) error {
	var err error
	switch s.target {
	case "FuzzDecodePair":
		_, err = DecodePair(s.payload)
	case "FuzzDecodeCheckpoint":
		_, err = DecodeCheckpoint(s.payload)
	case "FuzzDecodeEvalReport":
		_, err = DecodeEvalReport(s.payload)
	default:
		err = fmt.Errorf("unknown fuzz target %s", s.target)
	}
	return err
}

// corpusFile returns payload in the "go test fuzz v1" corpus file format for
// a fuzz function with one []byte argument.
func corpusFile(payload []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", payload)
}

// TestFuzzSeedCorpus checks that every seed decodes as expected and that the
// checked-in corpus files match the seeds. With -write-fuzz-seeds it writes
// the files instead.
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := append(append(pairSeeds(t), checkpointSeeds(t)...), evalReportSeeds(t)...)
	for _, s := range seeds {
		err := decodeSeed(s)
		if s.want == nil && err != nil {
			t.Errorf("%s/%s: valid seed rejected: %v", s.target, s.name, err)
		}
		if s.want != nil && !errors.Is(err, s.want) {
			t.Errorf("%s/%s: error = %v, want %v", s.target, s.name, err, s.want)
		}

		path := filepath.Join("testdata", "fuzz", s.target, s.name)
		want := corpusFile(s.payload)
		if *writeFuzzSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v; run go test ./messages -run TestFuzzSeedCorpus -write-fuzz-seeds", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale; run go test ./messages -run TestFuzzSeedCorpus -write-fuzz-seeds", path)
		}
	}
}
