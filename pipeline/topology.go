package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TopologyConfig sets the streams and buckets of one run. Zero fields take
// the defaults listed with them.
type TopologyConfig struct {
	Run string // required

	RawMaxBytes         int64 // bytes; default 32 MiB
	TrainMaxBytes       int64 // bytes; default 32 MiB
	CheckpointsMaxBytes int64 // bytes; default 64 MiB, oldest announcements dropped first
	EvalMaxBytes        int64 // bytes; default 64 MiB, oldest reports dropped first

	// DuplicateWindow is how long each stream remembers message ids; a
	// publish repeated within it is acknowledged but not stored again.
	// Default 2m.
	DuplicateWindow time.Duration

	Storage  jetstream.StorageType // default file storage
	Replicas int                   // default 1
}

func (c TopologyConfig) withDefaults() TopologyConfig {
	if c.RawMaxBytes == 0 {
		c.RawMaxBytes = 32 << 20
	}
	if c.TrainMaxBytes == 0 {
		c.TrainMaxBytes = 32 << 20
	}
	if c.CheckpointsMaxBytes == 0 {
		c.CheckpointsMaxBytes = 64 << 20
	}
	if c.EvalMaxBytes == 0 {
		c.EvalMaxBytes = 64 << 20
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Topology is the NATS side of one run: its four streams, the checkpoint
// Object Store and the run-state KV bucket.
type Topology struct {
	Names
	Config      TopologyConfig
	Checkpoints jetstream.ObjectStore // bucket CheckpointBucket
	Runs        jetstream.KeyValue    // bucket RunsBucket
	JetStream   jetstream.JetStream
}

// StreamConfigs returns the stream configurations of the run.
func (c TopologyConfig) StreamConfigs() ([]jetstream.StreamConfig, error) {
	n, err := NamesFor(c.Run)
	if err != nil {
		return nil, err
	}
	c = c.withDefaults()
	stream := func(name, subject, description string, retention jetstream.RetentionPolicy, discard jetstream.DiscardPolicy, maxBytes int64) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: description,
			Subjects:    []string{subject},
			Retention:   retention,
			Discard:     discard,
			MaxBytes:    maxBytes,
			MaxMsgs:     -1,
			MaxAge:      0,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
		}
	}
	return []jetstream.StreamConfig{
		stream(n.RawStream, n.RawSubject, "CycleGAN raw image pairs, loader to augmenters",
			jetstream.WorkQueuePolicy, jetstream.DiscardNew, c.RawMaxBytes),
		stream(n.TrainStream, n.TrainSubject, "CycleGAN augmented train pairs, augmenters to trainer",
			jetstream.WorkQueuePolicy, jetstream.DiscardNew, c.TrainMaxBytes),
		stream(n.CheckpointStream, n.CheckpointSubject, "CycleGAN checkpoint announcements, trainer to evaluator",
			jetstream.LimitsPolicy, jetstream.DiscardOld, c.CheckpointsMaxBytes),
		stream(n.EvalStream, n.EvalSubject, "CycleGAN evaluation reports",
			jetstream.LimitsPolicy, jetstream.DiscardOld, c.EvalMaxBytes),
	}, nil
}

// EnsureTopology creates the run's streams and the shared buckets, or binds
// to them when they exist, so every stage and process may call it. An
// existing stream whose byte bound or duplicate window differs is updated in
// place, and the last caller's values win. For an existing stream whose
// subjects, retention, discard policy, storage or replicas differ, it
// returns an error wrapping ErrTopologyMismatch that names the setting and
// the fix.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, cfg TopologyConfig, log *slog.Logger) (*Topology, error) {
	if log == nil {
		log = discardLogger()
	}
	streams, err := cfg.StreamConfigs()
	if err != nil {
		return nil, err
	}
	for _, want := range streams {
		if err := ensureStream(ctx, js, want, log); err != nil {
			return nil, err
		}
	}

	cfg = cfg.withDefaults()
	objects, err := ensureObjectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket:      CheckpointBucket,
		Description: "CycleGAN checkpoints, objects <run>/step-<n>.safetensors",
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}
	runs, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      RunsBucket,
		Description: "CycleGAN run states, key <run>",
		History:     5,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}

	names, _ := NamesFor(cfg.Run) // validated by StreamConfigs
	return &Topology{Names: names, Config: cfg, Checkpoints: objects, Runs: runs, JetStream: js}, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, log *slog.Logger) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		switch {
		case err == nil:
			log.Info("created stream", "stream", want.Name, "subject", want.Subjects[0], "retention", want.Retention.String(), "max_bytes", want.MaxBytes)
			return nil
		case isAPIError(err, jsErrCodeSubjectOverlap):
			return fmt.Errorf("%w: subject %s of stream %s is already bound to another stream: delete that stream or use another run id",
				ErrTopologyMismatch, want.Subjects[0], want.Name)
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			// Another stage created it since the lookup; compare with theirs.
			s, err = js.Stream(ctx, want.Name)
		default:
			return fmt.Errorf("create stream %s: %w", want.Name, err)
		}
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", want.Name, err)
	}

	have := s.CachedInfo().Config
	if err := compareStream(want, have); err != nil {
		return err
	}
	if have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates {
		return nil
	}
	updated := have
	updated.MaxBytes = want.MaxBytes
	updated.Duplicates = want.Duplicates
	if _, err := js.UpdateStream(ctx, updated); err != nil {
		return fmt.Errorf("update stream %s (max bytes %d → %d, duplicate window %s → %s): %w",
			want.Name, have.MaxBytes, want.MaxBytes, have.Duplicates, want.Duplicates, err)
	}
	log.Info("updated stream limits", "stream", want.Name,
		"max_bytes", want.MaxBytes, "previous_max_bytes", have.MaxBytes,
		"duplicate_window", want.Duplicates, "previous_duplicate_window", have.Duplicates)
	return nil
}

// compareStream returns an error naming every setting of the existing stream
// that differs from want and cannot be changed in place.
func compareStream(want, have jetstream.StreamConfig) error {
	var diffs []string
	if !slices.Equal(have.Subjects, want.Subjects) {
		diffs = append(diffs, fmt.Sprintf("subjects are %v, expected %v", have.Subjects, want.Subjects))
	}
	if have.Retention != want.Retention {
		diffs = append(diffs, fmt.Sprintf("retention is %s, expected %s", have.Retention, want.Retention))
	}
	if have.Discard != want.Discard {
		diffs = append(diffs, fmt.Sprintf("discard policy is %s, expected %s", have.Discard, want.Discard))
	}
	if have.Storage != want.Storage {
		diffs = append(diffs, fmt.Sprintf("storage is %s, expected %s", have.Storage, want.Storage))
	}
	if have.Replicas != want.Replicas {
		diffs = append(diffs, fmt.Sprintf("replicas are %d, expected %d", have.Replicas, want.Replicas))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: stream %s exists with other settings (%s): delete the stream, which discards its messages (for example `nats stream rm %s`), or use another run id",
		ErrTopologyMismatch, want.Name, strings.Join(diffs, "; "), want.Name)
}

func ensureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if err == nil {
		return obs, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("look up object store %s: %w", cfg.Bucket, err)
	}
	obs, err = js.CreateObjectStore(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		obs, err = js.ObjectStore(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", cfg.Bucket, err)
	}
	return obs, nil
}

func ensureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("look up KV bucket %s: %w", cfg.Bucket, err)
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// JetStream API error codes that nats.go has no constant for (values from
// nats-server's errors.json).
const (
	jsErrCodeAccountResourcesExceeded jetstream.ErrorCode = 10002 // account limits reached
	jsErrCodeInsufficientResources    jetstream.ErrorCode = 10023 // server is out of resources
	jsErrCodeMemoryResourcesExceeded  jetstream.ErrorCode = 10028 // server memory limit reached
	jsErrCodeStorageResourcesExceeded jetstream.ErrorCode = 10047 // server storage limit reached
	jsErrCodeSubjectOverlap           jetstream.ErrorCode = 10065 // subjects overlap with an existing stream
	// jsErrCodeStreamStoreFailed is the server's response to a publish that
	// the stream could not store. nats-server v2.15.3 sends it only when a
	// discard-new stream reached a limit (maximum bytes, messages or
	// messages per subject exceeded) and for a message too large to store.
	// It sends no response for an I/O failure.
	jsErrCodeStreamStoreFailed jetstream.ErrorCode = 10077
)

func isAPIError(err error, codes ...jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return slices.Contains(codes, apiErr.ErrorCode)
}
