package messages

import (
	"strconv"
	"time"
)

const (
	// CheckpointVersion is the checkpoint announcement version that this
	// package writes and reads.
	CheckpointVersion = 1
	// MaxCheckpointBytes is the maximum size in bytes of an encoded checkpoint
	// announcement. A valid one is under 400 bytes.
	MaxCheckpointBytes = 4096
	// sha256HexLength is the length of a SHA-256 digest in hexadecimal.
	sha256HexLength = 64
)

// Checkpoint announces a checkpoint that the trainer stored in the Object
// Store. Its JSON encoding is one compact object:
//
//	{"version":1,"run":"emoji","step":2000,"epoch":1,
//	 "object":"emoji/step-2000.safetensors","size":45301234,
//	 "sha256":"<64 lowercase hex digits>","created":"2025-01-02T03:04:05.5Z"}
type Checkpoint struct {
	Run     string    // run id, [A-Za-z0-9_-]{1,32}
	Step    int64     // training steps completed, 0 or more
	Epoch   int64     // the trainer's epoch at Step, 0 or more
	Object  string    // object name, always CheckpointObjectName(Run, Step)
	Size    int64     // object size in bytes, 1 or more
	SHA256  string    // SHA-256 digest of the object, 64 lowercase hex digits
	Created time.Time // when the object was stored, encoded in UTC
}

// CheckpointObjectName returns the Object Store name of the checkpoint of
// run at step: "<run>/step-<step>.safetensors".
func CheckpointObjectName(run string, step int64) string {
	return run + "/step-" + strconv.FormatInt(step, 10) + ".safetensors"
}

type checkpointWire struct {
	Version int    `json:"version"`
	Run     string `json:"run"`
	Step    int64  `json:"step"`
	Epoch   int64  `json:"epoch"`
	Object  string `json:"object"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Created string `json:"created"`
}

var checkpointKeys = []string{"version", "run", "step", "epoch", "object", "size", "sha256", "created"}

// Validate returns an error wrapping ErrField for the first field that breaks
// a rule of the checkpoint announcement.
func (c *Checkpoint) Validate() error {
	const message = "checkpoint"
	if err := validateRunID(message, "run", c.Run); err != nil {
		return err
	}
	if err := validateStep(message, c.Step); err != nil {
		return err
	}
	if c.Epoch < 0 {
		return fieldError(message, "epoch", c.Epoch, ErrField, "must be 0 or more")
	}
	if want := CheckpointObjectName(c.Run, c.Step); c.Object != want {
		return fieldError(message, "object", c.Object, ErrField, "must be %q, from run and step", want)
	}
	if c.Size < 1 {
		return fieldError(message, "size", c.Size, ErrField, "must be 1 byte or more")
	}
	if err := validateSHA256(message, "sha256", c.SHA256); err != nil {
		return err
	}
	return validateTime(message, "created", c.Created)
}

func validateSHA256(message, field, digest string) error {
	if len(digest) != sha256HexLength {
		return fieldError(message, field, digest, ErrField,
			"length %d, must be %d lowercase hex digits", len(digest), sha256HexLength)
	}
	for i := 0; i < len(digest); i++ {
		c := digest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fieldError(message, field, digest, ErrField,
				"byte %d is %q, must be a lowercase hex digit", i, digest[i:i+1])
		}
	}
	return nil
}

// EncodeCheckpoint validates the announcement and returns its compact JSON encoding.
func EncodeCheckpoint(c *Checkpoint) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return marshalJSON("checkpoint", checkpointWire{
		Version: CheckpointVersion,
		Run:     c.Run,
		Step:    c.Step,
		Epoch:   c.Epoch,
		Object:  c.Object,
		Size:    c.Size,
		SHA256:  c.SHA256,
		Created: formatTime(c.Created),
	})
}

// DecodeCheckpoint decodes and validates a checkpoint announcement. Keys
// must match exactly and appear once, and unknown keys and nulls are rejected. Errors
// wrap ErrTooLarge, ErrMalformed, ErrVersion or ErrField. The result's
// Created is in UTC.
func DecodeCheckpoint(payload []byte) (*Checkpoint, error) {
	const message = "checkpoint"
	if err := checkJSONSize(message, payload, MaxCheckpointBytes); err != nil {
		return nil, err
	}
	obj, err := parseJSONObject(message, "", payload)
	if err != nil {
		return nil, err
	}
	if err := obj.checkVersion(CheckpointVersion); err != nil {
		return nil, err
	}
	if err := obj.checkKeys(checkpointKeys, checkpointKeys); err != nil {
		return nil, err
	}

	var c Checkpoint
	fields := []struct {
		key   string
		value any
	}{
		{"run", &c.Run},
		{"step", &c.Step},
		{"epoch", &c.Epoch},
		{"object", &c.Object},
		{"size", &c.Size},
		{"sha256", &c.SHA256},
	}
	for _, f := range fields {
		if err := obj.decode(f.key, f.value); err != nil {
			return nil, err
		}
	}
	if c.Created, err = obj.decodeTime("created"); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
