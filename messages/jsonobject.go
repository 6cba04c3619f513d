package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// jsonObject is a JSON object decoded strictly: keys match exactly (encoding/json
// alone matches them case-insensitively), and a key may appear once.
type jsonObject struct {
	message string // message type for errors
	prefix  string // field path prefix for errors, "" or "metrics."
	fields  map[string]json.RawMessage
}

// parseJSONObject splits payload, which must be exactly one JSON object, into
// its members without decoding their values.
func parseJSONObject(message, prefix string, payload []byte) (*jsonObject, error) {
	field := strings.TrimSuffix(prefix, ".")
	if field == "" {
		field = "payload"
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	// malformed reports a syntax error in field. The value quoted is the
	// payload from the start of the item that failed to parse, because
	// encoding/json reports syntax error offsets relative to different
	// starting points.
	malformed := func(field string, start int64, reason string, err error) error {
		start = skipJSONSpaceAndColon(payload, start)
		return fieldError(message, field, payload[start:], ErrMalformed, "%s at byte %d: %v", reason, start, err)
	}

	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(field, 0, "not a JSON object", err)
	}
	if tok != json.Delim('{') {
		return nil, fieldError(message, field, payload, ErrMalformed, "not a JSON object")
	}
	obj := &jsonObject{message: message, prefix: prefix, fields: map[string]json.RawMessage{}}
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(field, start, "invalid object key", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fieldError(message, field, payload, ErrMalformed, "object key %v is not a string", tok)
		}
		if _, dup := obj.fields[key]; dup {
			return nil, fieldError(message, prefix+key, key, ErrField, "key appears more than once")
		}
		start = dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(prefix+key, start, "invalid JSON value", err)
		}
		obj.fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(field, dec.InputOffset(), "unterminated object", err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, fieldError(message, field, payload[end:], ErrMalformed,
			"data after the JSON object at byte %d", end)
	}
	return obj, nil
}

// skipJSONSpaceAndColon returns the offset of the first byte at or after
// offset in payload that is neither JSON whitespace nor a colon.
func skipJSONSpaceAndColon(payload []byte, offset int64) int64 {
	offset = min(max(offset, 0), int64(len(payload)))
	for offset < int64(len(payload)) {
		switch payload[offset] {
		case ' ', '\t', '\n', '\r', ':':
			offset++
		default:
			return offset
		}
	}
	return offset
}

// checkVersion rejects a missing or unknown "version" member.
func (o *jsonObject) checkVersion(want int) error {
	raw, ok := o.fields["version"]
	if !ok {
		return fieldError(o.message, "version", "", ErrVersion, "missing, this decoder reads version %d", want)
	}
	var version int
	if err := json.Unmarshal(raw, &version); err != nil || version != want {
		return fieldError(o.message, "version", string(raw), ErrVersion, "this decoder reads version %d", want)
	}
	return nil
}

// checkKeys rejects members outside known and missing members of required.
func (o *jsonObject) checkKeys(known, required []string) error {
	keys := make([]string, 0, len(o.fields))
	for key := range o.fields {
		keys = append(keys, key)
	}
	sort.Strings(keys) // so the error names the same key on every run
	for _, key := range keys {
		if !slices.Contains(known, key) {
			return fieldError(o.message, o.prefix+key, key, ErrField, "unknown key")
		}
	}
	for _, key := range required {
		if _, ok := o.fields[key]; !ok {
			return fieldError(o.message, o.prefix+key, "", ErrField, "missing")
		}
	}
	return nil
}

// decode unmarshals the member key into v. A JSON null is rejected, because
// encoding/json would leave v unchanged and accept it silently.
func (o *jsonObject) decode(key string, v any) error {
	raw := o.fields[key]
	if string(raw) == "null" {
		return fieldError(o.message, o.prefix+key, "null", ErrField, "must not be null")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fieldError(o.message, o.prefix+key, string(raw), ErrField, "must be %s", describeJSONType(v))
	}
	return nil
}

// describeJSONType names the JSON values that decode into the Go value v
// points to, for error messages.
func describeJSONType(v any) string {
	switch v.(type) {
	case *string:
		return "a string"
	case *int:
		return "an integer"
	case *int64:
		return "an integer from -2^63 to 2^63-1"
	case *float64:
		return "a number within the range of float64"
	case *[]string:
		return "an array of strings"
	default:
		return fmt.Sprintf("a JSON value that decodes into %T", v)
	}
}

// decodeTime decodes an RFC 3339 time in UTC, written with the suffix "Z".
func (o *jsonObject) decodeTime(key string) (time.Time, error) {
	var text string
	if err := o.decode(key, &text); err != nil {
		return time.Time{}, err
	}
	return parseTime(o.message, o.prefix+key, text)
}

func parseTime(message, field, text string) (time.Time, error) {
	// time.Parse also accepts a comma before the fraction, which RFC 3339 does not.
	if !strings.HasSuffix(text, "Z") || strings.Contains(text, ",") {
		return time.Time{}, fieldError(message, field, text, ErrField,
			"must be an RFC 3339 time in UTC ending in Z, such as 2006-01-02T15:04:05Z")
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return time.Time{}, fieldError(message, field, text, ErrField, "not an RFC 3339 time: %v", err)
	}
	if err := validateTime(message, field, t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// validateTime rejects the zero time, which means the field was never set,
// and years outside 1 to 9999, which RFC 3339 cannot write.
func validateTime(message, field string, t time.Time) error {
	if t.IsZero() {
		return fieldError(message, field, t, ErrField, "missing")
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fieldError(message, field, t, ErrField, "year %d must be 1 to 9999", y)
	}
	return nil
}

// formatTime writes t in UTC with as many fractional digits as it needs.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// validateStep rejects negative training steps.
func validateStep(message string, step int64) error {
	if step < 0 {
		return fieldError(message, "step", step, ErrField, "must be 0 or more")
	}
	return nil
}

// validateFinite rejects NaN and infinities, which JSON cannot represent.
func validateFinite(message, field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldError(message, field, v, ErrField, "must be a finite number")
	}
	return nil
}

// checkJSONSize rejects a JSON payload above maxBytes before it is parsed.
func checkJSONSize(message string, payload []byte, maxBytes int) error {
	if len(payload) > maxBytes {
		return fieldError(message, "payload", len(payload), ErrTooLarge,
			"length must be at most %d bytes", maxBytes)
	}
	return nil
}

// marshalJSON encodes a wire struct. The caller validated it, so an error is
// unexpected. It wraps ErrField and the encoding/json error.
func marshalJSON(message string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("messages: encode %s: %w: %w", message, ErrField, err)
	}
	return data, nil
}
