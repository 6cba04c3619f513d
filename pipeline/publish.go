package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublisherOptions configure a Publisher. Stream and Subject are required.
type PublisherOptions struct {
	Stream  string // stream name; publishes must land there
	Subject string
	Run     string // run label of the metrics
	Stage   string // stage label of the metrics, such as "loader"

	Metrics *Metrics     // nil counts into unregistered collectors
	Logger  *slog.Logger // nil discards the records

	// InitialBackoff is the first wait before a retry, and each further
	// retry doubles it up to MaxBackoff. A random jitter of up to half the
	// wait is subtracted. Defaults: 50ms and 2s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// AttemptTimeout bounds the wait for the server's ack to one attempt.
	// Default 5s.
	AttemptTimeout time.Duration
}

// Publisher publishes to one stream and never drops a message. Each message
// carries the caller's id as Nats-Msg-Id, so the stream acknowledges an
// attempt repeated within its duplicate window without storing it twice.
// While the stream is full, the server is unreachable or an ack does not
// arrive, Publish waits and tries again until it succeeds or its context
// ends. A full bounded stream thus slows the producer down instead of
// losing messages. A Publisher is safe for concurrent use.
type Publisher struct {
	js             jetstream.JetStream
	nc             *nats.Conn
	opts           PublisherOptions
	log            *slog.Logger
	maxStreamBytes int64 // the stream's byte bound when the Publisher was made; -1 for none
}

// NewPublisher returns a Publisher for opts.Stream, which must exist.
func NewPublisher(ctx context.Context, js jetstream.JetStream, opts PublisherOptions) (*Publisher, error) {
	if opts.Stream == "" || opts.Subject == "" {
		return nil, errors.New("new publisher: stream and subject are required")
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil) // only registering can fail, and nil registers nothing
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = max(2*time.Second, opts.InitialBackoff)
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 5 * time.Second
	}

	s, err := js.Stream(ctx, opts.Stream)
	if err != nil {
		return nil, fmt.Errorf("new publisher: look up stream %s: %w", opts.Stream, err)
	}
	opts.Metrics.initPublisher(opts.Run, opts.Stage, opts.Stream)
	return &Publisher{
		js:             js,
		nc:             js.Conn(),
		opts:           opts,
		log:            opts.Logger.With("stream", opts.Stream, "subject", opts.Subject),
		maxStreamBytes: s.CachedInfo().Config.MaxBytes,
	}, nil
}

// Publish stores data under msgID and returns the server's ack, whose
// Duplicate field is true when the stream had the id already. It retries as
// described on Publisher. It returns an error only when ctx ends, for a
// payload that can never be stored (ErrPayloadTooLarge), for an empty msgID
// (ErrMissingMsgID), or for a rejection that waiting cannot fix, such as a
// closed connection.
func (p *Publisher) Publish(ctx context.Context, msgID string, data []byte) (*jetstream.PubAck, error) {
	if msgID == "" {
		return nil, fmt.Errorf("publish to %s: %w", p.opts.Subject, ErrMissingMsgID)
	}
	if err := p.checkSize(msgID, data); err != nil {
		return nil, err
	}

	backoff := p.opts.InitialBackoff
	lastReason := ""
	for attempt := 1; ; attempt++ {
		ack, err := p.attempt(ctx, msgID, data)
		if err == nil {
			if attempt > 1 {
				p.log.Log(ctx, retryLogLevel(lastReason), "published after retries", "msg_id", msgID, "attempts", attempt, "duplicate", ack.Duplicate)
			}
			return ack, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("publish %s to %s after %d attempts: %w", msgID, p.opts.Subject, attempt, ctx.Err())
		}
		reason := retryReason(err)
		if reason == "" {
			return nil, fmt.Errorf("publish %s to %s: %w", msgID, p.opts.Subject, err)
		}

		p.opts.Metrics.publishRetries.WithLabelValues(p.opts.Run, p.opts.Stage, p.opts.Stream, reason).Inc()
		// One record when a wait starts or changes reason, then one per 50
		// attempts, so that a long outage does not flood the log.
		if reason != lastReason || attempt%50 == 0 {
			p.log.Log(ctx, retryLogLevel(reason), "publish waiting to retry", "msg_id", msgID, "reason", reason, "attempt", attempt, "wait", backoff, "err", err)
		}
		lastReason = reason

		wait := backoff - rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %s to %s after %d attempts (last retry reason: %s): %w", msgID, p.opts.Subject, attempt, reason, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, p.opts.MaxBackoff)
	}
}

// retryLogLevel is the level of the records about a retry for reason. A full stream is
// the normal state of a producer that runs ahead of its consumer, so those waits are
// debug records, which the retry metric still counts. The other reasons point at a fault.
func retryLogLevel(reason string) slog.Level {
	if reason == RetryStreamFull {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// attempt publishes once and waits at most AttemptTimeout for the ack.
func (p *Publisher) attempt(ctx context.Context, msgID string, data []byte) (*jetstream.PubAck, error) {
	if !p.nc.IsConnected() {
		if p.nc.IsClosed() {
			return nil, nats.ErrConnectionClosed
		}
		// Waiting here, rather than publishing into the client's reconnect
		// buffer, keeps an outage from filling that buffer with copies.
		return nil, nats.ErrDisconnected
	}

	ctx, cancel := context.WithTimeout(ctx, p.opts.AttemptTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: p.opts.Subject, Data: data}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(p.opts.Stream))
	if err != nil {
		return nil, err
	}
	p.opts.Metrics.published.WithLabelValues(p.opts.Run, p.opts.Stage, p.opts.Stream).Inc()
	return ack, nil
}

// retryReason classifies a failed publish: "" for a permanent failure.
func retryReason(err error) string {
	switch {
	case isAPIError(err, jsErrCodeStreamStoreFailed, jsErrCodeStorageResourcesExceeded,
		jsErrCodeMemoryResourcesExceeded, jsErrCodeAccountResourcesExceeded, jsErrCodeInsufficientResources):
		return RetryStreamFull
	case isAPIError(err):
		// Any other server rejection, such as a wrong expected stream,
		// fails the same way every time.
		return ""
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject), errors.Is(err, jetstream.ErrInvalidOption):
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return RetryTimeout
	case errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrStaleConnection):
		return RetryDisconnected
	default:
		// No responders (a stream leader not yet elected, a server that is
		// still recovering its streams) and transport failures.
		return RetryUnavailable
	}
}

// checkSize rejects a message that could never be stored: one larger than
// the server's max payload, or than the stream's byte bound.
func (p *Publisher) checkSize(msgID string, data []byte) error {
	hdrBytes := publishHeaderBytes(msgID, p.opts.Stream)
	if limit := p.nc.MaxPayload(); limit > 0 && int64(len(data)+hdrBytes) > limit {
		return fmt.Errorf("publish %s to %s: %w: %d payload bytes plus %d header bytes exceed the server's max payload of %d bytes",
			msgID, p.opts.Subject, ErrPayloadTooLarge, len(data), hdrBytes, limit)
	}
	// Stored size as nats-server v2.15.3's file store counts it against the
	// stream's max bytes: 34 bytes of record framing, subject, headers, data.
	stored := int64(34 + len(p.opts.Subject) + hdrBytes + len(data))
	if p.maxStreamBytes > 0 && stored > p.maxStreamBytes {
		return fmt.Errorf("publish %s to %s: %w: the message needs %d bytes of storage but the max bytes of stream %s is %d",
			msgID, p.opts.Subject, ErrPayloadTooLarge, stored, p.opts.Stream, p.maxStreamBytes)
	}
	return nil
}

// publishHeaderBytes returns the size of the NATS header block that Publish
// sends: the version line, Nats-Msg-Id, Nats-Expected-Stream, blank line.
func publishHeaderBytes(msgID, stream string) int {
	const versionLine = len("NATS/1.0\r\n")
	const blankLine = len("\r\n")
	field := func(key, value string) int { return len(key) + len(": ") + len(value) + len("\r\n") }
	return versionLine + field(jetstream.MsgIDHeader, msgID) + field(jetstream.ExpectedStreamHeader, stream) + blankLine
}
