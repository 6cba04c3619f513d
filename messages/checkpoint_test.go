package messages

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testDigest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func testCheckpoint() *Checkpoint {
	return &Checkpoint{
		Run:     "emoji",
		Step:    2000,
		Epoch:   1,
		Object:  "emoji/step-2000.safetensors",
		Size:    45301234,
		SHA256:  testDigest,
		Created: time.Date(2025, 1, 2, 3, 4, 5, 500_000_000, time.UTC),
	}
}

// validCheckpointJSON is the encoding of testCheckpoint.
const validCheckpointJSON = `{"version":1,"run":"emoji","step":2000,"epoch":1,` +
	`"object":"emoji/step-2000.safetensors","size":45301234,` +
	`"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",` +
	`"created":"2025-01-02T03:04:05.5Z"}`

func checkpointsEqual(a, b *Checkpoint) bool {
	return a.Run == b.Run && a.Step == b.Step && a.Epoch == b.Epoch && a.Object == b.Object &&
		a.Size == b.Size && a.SHA256 == b.SHA256 && a.Created.Equal(b.Created)
}

func TestCheckpointRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	cases := []struct {
		name string
		edit func(c *Checkpoint)
	}{
		{"example", func(c *Checkpoint) {}},
		{"step 0", func(c *Checkpoint) { c.Step, c.Epoch, c.Object = 0, 0, "emoji/step-0.safetensors" }},
		{"created in another zone", func(c *Checkpoint) { c.Created = time.Date(2030, 6, 1, 12, 0, 0, 1, zone) }},
		{"created now, with a monotonic reading", func(c *Checkpoint) { c.Created = time.Now() }},
		{"largest step", func(c *Checkpoint) {
			c.Run = strings.Repeat("R", 32)
			c.Step = 1<<63 - 1
			c.Object = CheckpointObjectName(c.Run, c.Step)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCheckpoint()
			tc.edit(c)
			payload, err := EncodeCheckpoint(c)
			if err != nil {
				t.Fatalf("EncodeCheckpoint: %v", err)
			}
			got, err := DecodeCheckpoint(payload)
			if err != nil {
				t.Fatalf("DecodeCheckpoint(%s): %v", payload, err)
			}
			if !checkpointsEqual(got, c) {
				t.Errorf("decoded %+v, want %+v", got, c)
			}
			if got.Created.Location() != time.UTC {
				t.Errorf("decoded time in %v, want UTC", got.Created.Location())
			}
		})
	}
}

func TestCheckpointEncoding(t *testing.T) {
	got, err := EncodeCheckpoint(testCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != validCheckpointJSON {
		t.Errorf("encoding:\n got %s\nwant %s", got, validCheckpointJSON)
	}
}

func TestCheckpointLargestEncoding(t *testing.T) {
	c := testCheckpoint()
	c.Run = strings.Repeat("R", MaxRunIDLength)
	c.Step, c.Epoch, c.Size = 1<<63-1, 1<<63-1, 1<<63-1
	c.Object = CheckpointObjectName(c.Run, c.Step)
	c.Created = time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.UTC)
	payload, err := EncodeCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) >= 400 {
		t.Errorf("largest announcement is %d bytes, the MaxCheckpointBytes comment promises under 400", len(payload))
	}
}

func TestCheckpointObjectName(t *testing.T) {
	if got, want := CheckpointObjectName("horse2zebra", 150000), "horse2zebra/step-150000.safetensors"; got != want {
		t.Errorf("CheckpointObjectName = %q, want %q", got, want)
	}
}

// replaceOnce returns s with the first old replaced by new, and fails the
// test when old is not in s, so a stale case cannot pass silently.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func TestDecodeCheckpointRejects(t *testing.T) {
	base := validCheckpointJSON
	cases := []struct {
		name    string
		payload func(t *testing.T) string
		want    error
		field   string
	}{
		{"empty", func(t *testing.T) string { return "" }, ErrMalformed, "payload"},
		{"array", func(t *testing.T) string { return "[1]" }, ErrMalformed, "payload"},
		{"pair magic", func(t *testing.T) string { return "CGPR\x01\x00" }, ErrMalformed, "payload"},
		{"unterminated", func(t *testing.T) string { return base[:len(base)-1] }, ErrMalformed, "payload"},
		{"trailing object", func(t *testing.T) string { return base + "{}" }, ErrMalformed, "payload"},
		{"trailing garbage", func(t *testing.T) string { return base + " x" }, ErrMalformed, "payload"},
		{"too large", func(t *testing.T) string {
			return replaceOnce(t, base, `"run"`, `"pad":"`+strings.Repeat(" ", MaxCheckpointBytes)+`","run"`)
		}, ErrTooLarge, "payload"},
		{"version missing", func(t *testing.T) string { return replaceOnce(t, base, `"version":1,`, "") }, ErrVersion, "version"},
		{"version 2", func(t *testing.T) string { return replaceOnce(t, base, `"version":1`, `"version":2`) }, ErrVersion, "version"},
		{"version as string", func(t *testing.T) string { return replaceOnce(t, base, `"version":1`, `"version":"1"`) }, ErrVersion, "version"},
		{"version null", func(t *testing.T) string { return replaceOnce(t, base, `"version":1`, `"version":null`) }, ErrVersion, "version"},
		{"unknown key", func(t *testing.T) string { return replaceOnce(t, base, `"epoch"`, `"lr":0.1,"epoch"`) }, ErrField, "lr"},
		{"key in other case", func(t *testing.T) string { return replaceOnce(t, base, `"run"`, `"Run"`) }, ErrField, "Run"},
		{"duplicate key", func(t *testing.T) string { return replaceOnce(t, base, `"epoch":1`, `"epoch":1,"epoch":2`) }, ErrField, "epoch"},
		{"missing created", func(t *testing.T) string {
			return replaceOnce(t, base, `,"created":"2025-01-02T03:04:05.5Z"`, "")
		}, ErrField, "created"},
		{"run with a dot", func(t *testing.T) string { return strings.ReplaceAll(base, "emoji", "emo.ji") }, ErrField, "run"},
		{"run empty", func(t *testing.T) string { return replaceOnce(t, base, `"run":"emoji"`, `"run":""`) }, ErrField, "run"},
		{"run null", func(t *testing.T) string { return replaceOnce(t, base, `"run":"emoji"`, `"run":null`) }, ErrField, "run"},
		{"negative step", func(t *testing.T) string {
			s := replaceOnce(t, base, `"step":2000`, `"step":-1`)
			return replaceOnce(t, s, "step-2000", "step--1")
		}, ErrField, "step"},
		{"fractional step", func(t *testing.T) string { return replaceOnce(t, base, `"step":2000`, `"step":2000.5`) }, ErrField, "step"},
		{"step as string", func(t *testing.T) string { return replaceOnce(t, base, `"step":2000`, `"step":"2000"`) }, ErrField, "step"},
		{"step overflows int64", func(t *testing.T) string {
			return replaceOnce(t, base, `"step":2000`, `"step":9223372036854775808`)
		}, ErrField, "step"},
		{"step null", func(t *testing.T) string { return replaceOnce(t, base, `"step":2000`, `"step":null`) }, ErrField, "step"},
		{"negative epoch", func(t *testing.T) string { return replaceOnce(t, base, `"epoch":1`, `"epoch":-3`) }, ErrField, "epoch"},
		{"object of another step", func(t *testing.T) string { return replaceOnce(t, base, "step-2000", "step-1000") }, ErrField, "object"},
		{"object of another run", func(t *testing.T) string {
			return replaceOnce(t, base, "emoji/step", "other/step")
		}, ErrField, "object"},
		{"size 0", func(t *testing.T) string { return replaceOnce(t, base, `"size":45301234`, `"size":0`) }, ErrField, "size"},
		{"digest too short", func(t *testing.T) string { return replaceOnce(t, base, testDigest, testDigest[:63]) }, ErrField, "sha256"},
		{"digest upper case", func(t *testing.T) string {
			return replaceOnce(t, base, testDigest, strings.ToUpper(testDigest))
		}, ErrField, "sha256"},
		{"digest not hex", func(t *testing.T) string { return replaceOnce(t, base, testDigest, "g"+testDigest[1:]) }, ErrField, "sha256"},
		{"digest with prefix", func(t *testing.T) string {
			return replaceOnce(t, base, testDigest, "sha256:"+testDigest)
		}, ErrField, "sha256"},
		{"created with offset", func(t *testing.T) string {
			return replaceOnce(t, base, "05.5Z", "05.5+01:00")
		}, ErrField, "created"},
		{"created +00:00", func(t *testing.T) string { return replaceOnce(t, base, "05.5Z", "05.5+00:00") }, ErrField, "created"},
		{"created with a comma", func(t *testing.T) string { return replaceOnce(t, base, "05.5Z", "05,5Z") }, ErrField, "created"},
		{"created date only", func(t *testing.T) string {
			return replaceOnce(t, base, "2025-01-02T03:04:05.5Z", "2025-01-02Z")
		}, ErrField, "created"},
		{"created as number", func(t *testing.T) string {
			return replaceOnce(t, base, `"2025-01-02T03:04:05.5Z"`, "1735787045")
		}, ErrField, "created"},
		{"created zero time", func(t *testing.T) string {
			return replaceOnce(t, base, "2025-01-02T03:04:05.5Z", "0001-01-01T00:00:00Z")
		}, ErrField, "created"},
		{"size NaN literal", func(t *testing.T) string { return replaceOnce(t, base, "45301234", "NaN") }, ErrMalformed, "size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCheckpoint([]byte(tc.payload(t)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeCheckpoint error = %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Errorf("DecodeCheckpoint returned %+v with error %v", c, err)
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

func TestEncodeCheckpointRejects(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(c *Checkpoint)
		field string
	}{
		{"run with a slash", func(c *Checkpoint) { c.Run = "a/b" }, "run"},
		{"negative step", func(c *Checkpoint) { c.Step = -5 }, "step"},
		{"negative epoch", func(c *Checkpoint) { c.Epoch = -1 }, "epoch"},
		{"object not matching step", func(c *Checkpoint) { c.Step = 2001 }, "object"},
		{"empty object", func(c *Checkpoint) { c.Object = "" }, "object"},
		{"negative size", func(c *Checkpoint) { c.Size = -1 }, "size"},
		{"empty digest", func(c *Checkpoint) { c.SHA256 = "" }, "sha256"},
		{"zero time", func(c *Checkpoint) { c.Created = time.Time{} }, "created"},
		{"year 10000", func(c *Checkpoint) { c.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCheckpoint()
			tc.edit(c)
			payload, err := EncodeCheckpoint(c)
			if !errors.Is(err, ErrField) {
				t.Fatalf("EncodeCheckpoint error = %v, want ErrField", err)
			}
			if payload != nil {
				t.Errorf("EncodeCheckpoint returned %s with error %v", payload, err)
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
