package pipeline

import "errors"

// Sentinel errors of the package. Callers test them with errors.Is; the
// returned errors wrap them together with the value that failed.
var (
	// ErrPoison marks a message that can never be handled, such as one that
	// fails to decode. A Handler wraps it (fmt.Errorf("decode pair: %w: %v",
	// ErrPoison, err)) so that the consumer terminates the message instead
	// of asking for a redelivery.
	ErrPoison = errors.New("poison message")

	// ErrHandBack is wrapped by a Handler that stops before doing its work, for
	// example because its stage is finishing, and gives the message back
	// unharmed: it is redelivered at once and logged at debug level.
	ErrHandBack = errors.New("message handed back")

	// ErrInvalidSetting is returned by FlagSet.Parse for a flag or
	// environment value that breaks its rule. The error is a *SettingError
	// unless the flag itself is unknown or a cross-setting check failed.
	ErrInvalidSetting = errors.New("invalid setting")

	// ErrInvalidRunID is returned for a run id outside [A-Za-z0-9_-]{1,32}.
	ErrInvalidRunID = errors.New("invalid run id")

	// ErrTopologyMismatch is returned by EnsureTopology when a stream of the
	// run already exists with settings that cannot be changed in place.
	ErrTopologyMismatch = errors.New("existing NATS topology does not match")

	// ErrPayloadTooLarge is returned by Publisher.Publish, before anything is
	// sent, for a message larger than the server's max payload or than the
	// stream's byte limit.
	ErrPayloadTooLarge = errors.New("payload too large")

	// ErrMissingMsgID is returned by Publisher.Publish for an empty message
	// id, because deduplication needs one.
	ErrMissingMsgID = errors.New("missing message id")

	// ErrRunStateNotFound is returned by RunStore.Get before the run's state
	// was first written.
	ErrRunStateNotFound = errors.New("run state not found")

	// ErrRevisionConflict is returned by RunStore.Update when the stored
	// revision is not the one the caller read, so another writer came first.
	ErrRevisionConflict = errors.New("run state revision conflict")

	// ErrInvalidCheckpointName is returned by ParseCheckpointName for a name
	// that is not <run>/step-<n>.safetensors.
	ErrInvalidCheckpointName = errors.New("invalid checkpoint object name")

	// ErrNotReady is wrapped by Readiness.Check while a condition is unmet.
	ErrNotReady = errors.New("not ready")

	// ErrProbeFailed is returned by Probe for a response other than 2xx.
	ErrProbeFailed = errors.New("probe failed")
)
