package messages

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by the encoders and decoders wraps
// exactly one of them, so callers test the cause with errors.Is.
var (
	// ErrMagic is returned when a pair payload does not start with the bytes "CGPR".
	ErrMagic = errors.New("wrong magic")
	// ErrVersion is returned for a missing or unknown format version.
	ErrVersion = errors.New("unsupported format version")
	// ErrTruncated is returned when a payload is shorter than its header declares.
	ErrTruncated = errors.New("truncated payload")
	// ErrTooLarge is returned when a payload is longer than its header declares,
	// or longer than the format's maximum size.
	ErrTooLarge = errors.New("payload too large")
	// ErrDimensions is returned for an invalid height, width, channel count,
	// pixel length, load size or crop offset.
	ErrDimensions = errors.New("invalid dimensions")
	// ErrField is returned for any other invalid field, such as the kind,
	// element type, run id, a name, step, digest, time, a metric, or an
	// unknown, missing or duplicate JSON key.
	ErrField = errors.New("invalid field")
	// ErrMalformed is returned for a JSON payload that is not a single JSON
	// object. JSON has no NaN or Infinity literals, so a payload containing
	// them is malformed.
	ErrMalformed = errors.New("malformed JSON")
	// ErrPayloadTooLarge is returned by CheckPayloadSize when a message does
	// not fit the server's max payload.
	ErrPayloadTooLarge = errors.New("message exceeds max payload")
)

// FieldError is the error returned for a rejected message. It names the
// message type, the field and the offending value, and unwraps to one of the
// sentinel errors above.
type FieldError struct {
	Message string // message type: "pair", "checkpoint" or "eval report"
	Field   string // wire name of the field, for example "height" or "metrics.swd_AB"
	Value   string // offending value, formatted for logs (long values are shortened)
	Reason  string // the rule the value breaks
	Err     error  // sentinel error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("messages: %s field %s = %s: %s: %v", e.Message, e.Field, e.Value, e.Reason, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(message, field string, value any, sentinel error, format string, args ...any) *FieldError {
	return &FieldError{
		Message: message,
		Field:   field,
		Value:   formatValue(value),
		Reason:  fmt.Sprintf(format, args...),
		Err:     sentinel,
	}
}

// maxValueRunes bounds the length of a value quoted in an error message, so a
// hostile payload cannot flood the logs.
const maxValueRunes = 64

func formatValue(value any) string {
	switch v := value.(type) {
	case string:
		if utf8.RuneCountInString(v) > maxValueRunes {
			runes := []rune(v)
			return fmt.Sprintf("%q...", string(runes[:maxValueRunes]))
		}
		return fmt.Sprintf("%q", v)
	case []byte:
		if len(v) > maxValueRunes {
			return fmt.Sprintf("%q...", v[:maxValueRunes])
		}
		return fmt.Sprintf("%q", v)
	default:
		return fmt.Sprint(v)
	}
}

// CheckPayloadSize returns an error wrapping ErrPayloadTooLarge when a message
// of size bytes does not fit maxPayload bytes, the value that nats.Conn.MaxPayload
// reports (1 MiB on a default server). NATS counts message headers against the
// same limit, so a publisher that sets headers passes maxPayload minus the
// header bytes. A maxPayload of zero or less rejects every non-empty message,
// because it means the limit is unknown (nats.go reports 0 before it connects).
func CheckPayloadSize(size int, maxPayload int64) error {
	if int64(size) > maxPayload {
		return fmt.Errorf("messages: message of %d bytes exceeds the max payload of %d bytes: %w",
			size, maxPayload, ErrPayloadTooLarge)
	}
	return nil
}

// MaxRunIDLength is the maximum length of a run id in bytes.
const MaxRunIDLength = 32

// ValidateRunID returns an error wrapping ErrField unless run matches
// [A-Za-z0-9_-]{1,32}. Run ids become parts of stream, subject and object
// names, which is why dots, slashes and spaces are excluded.
func ValidateRunID(run string) error {
	return validateRunID("run id", "run", run)
}

func validateRunID(message, field, run string) error {
	if len(run) == 0 || len(run) > MaxRunIDLength {
		return fieldError(message, field, run, ErrField,
			"length %d bytes, must be 1 to %d", len(run), MaxRunIDLength)
	}
	for i := 0; i < len(run); i++ {
		if !isRunIDByte(run[i]) {
			return fieldError(message, field, run, ErrField,
				"byte %d is %q, must be one of A-Z a-z 0-9 _ -", i, run[i:i+1])
		}
	}
	return nil
}

func isRunIDByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validateText rejects invalid UTF-8 and control characters in a string that
// ends up in logs and file names.
func validateText(message, field, text string, maxBytes int) error {
	if len(text) > maxBytes {
		return fieldError(message, field, text, ErrField, "length %d bytes, must be at most %d", len(text), maxBytes)
	}
	if !utf8.ValidString(text) {
		return fieldError(message, field, text, ErrField, "not valid UTF-8")
	}
	for _, r := range text {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fieldError(message, field, text, ErrField, "contains control character %U", r)
		}
	}
	return nil
}
