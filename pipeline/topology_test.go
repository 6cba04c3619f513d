package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEnsureTopologyTwice(t *testing.T) {
	log, _ := newTestLogger(t)
	srv := startEmbedded(t, EmbeddedOptions{})
	_, js := connectJS(t, srv.ClientURL(), log)
	ctx := t.Context()
	cfg := TopologyConfig{Run: "twice", RawMaxBytes: 1 << 20, TrainMaxBytes: 2 << 20}

	first, err := EnsureTopology(ctx, js, cfg, log)
	if err != nil {
		t.Fatalf("first EnsureTopology: %v", err)
	}
	created := map[string]time.Time{}
	for _, name := range []string{first.RawStream, first.TrainStream, first.CheckpointStream, first.EvalStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s after EnsureTopology: %v", name, err)
		}
		created[name] = s.CachedInfo().Created
	}

	second, err := EnsureTopology(ctx, js, cfg, log)
	if err != nil {
		t.Fatalf("second EnsureTopology: %v", err)
	}
	if second.Names != first.Names {
		t.Errorf("names differ: %+v then %+v", first.Names, second.Names)
	}
	for name, when := range created {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s after second EnsureTopology: %v", name, err)
		}
		if got := s.CachedInfo().Created; !got.Equal(when) {
			t.Errorf("stream %s was created again: %s, first %s", name, got, when)
		}
	}

	tests := []struct {
		stream    string
		subject   string
		retention jetstream.RetentionPolicy
		discard   jetstream.DiscardPolicy
		maxBytes  int64
	}{
		{"CYCLEGAN_RAW_twice", "cyclegan.twice.raw", jetstream.WorkQueuePolicy, jetstream.DiscardNew, 1 << 20},
		{"CYCLEGAN_TRAIN_twice", "cyclegan.twice.train", jetstream.WorkQueuePolicy, jetstream.DiscardNew, 2 << 20},
		{"CYCLEGAN_CHECKPOINTS_twice", "cyclegan.twice.checkpoints", jetstream.LimitsPolicy, jetstream.DiscardOld, 64 << 20},
		{"CYCLEGAN_EVAL_twice", "cyclegan.twice.eval", jetstream.LimitsPolicy, jetstream.DiscardOld, 64 << 20},
	}
	for _, tt := range tests {
		s, err := js.Stream(ctx, tt.stream)
		if err != nil {
			t.Errorf("stream %s: %v", tt.stream, err)
			continue
		}
		c := s.CachedInfo().Config
		if len(c.Subjects) != 1 || c.Subjects[0] != tt.subject {
			t.Errorf("%s subjects = %v, want [%s]", tt.stream, c.Subjects, tt.subject)
		}
		if c.Retention != tt.retention {
			t.Errorf("%s retention = %s, want %s", tt.stream, c.Retention, tt.retention)
		}
		if c.Discard != tt.discard {
			t.Errorf("%s discard = %s, want %s", tt.stream, c.Discard, tt.discard)
		}
		if c.MaxBytes != tt.maxBytes {
			t.Errorf("%s max bytes = %d, want %d", tt.stream, c.MaxBytes, tt.maxBytes)
		}
		if c.Duplicates != 2*time.Minute {
			t.Errorf("%s duplicate window = %s, want 2m", tt.stream, c.Duplicates)
		}
	}

	if _, err := js.ObjectStore(ctx, CheckpointBucket); err != nil {
		t.Errorf("object store %s: %v", CheckpointBucket, err)
	}
	if _, err := js.KeyValue(ctx, RunsBucket); err != nil {
		t.Errorf("KV bucket %s: %v", RunsBucket, err)
	}

	// A second run shares the buckets and gets streams of its own.
	other, err := EnsureTopology(ctx, js, TopologyConfig{Run: "other"}, log)
	if err != nil {
		t.Fatalf("EnsureTopology for a second run: %v", err)
	}
	if other.RawStream != "CYCLEGAN_RAW_other" {
		t.Errorf("second run raw stream = %s", other.RawStream)
	}
}

func TestEnsureTopologyUpdatesLimits(t *testing.T) {
	log, _ := newTestLogger(t)
	srv := startEmbedded(t, EmbeddedOptions{})
	_, js := connectJS(t, srv.ClientURL(), log)
	ctx := t.Context()

	if _, err := EnsureTopology(ctx, js, TopologyConfig{Run: "limits", RawMaxBytes: 1 << 20}, log); err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	if _, err := EnsureTopology(ctx, js, TopologyConfig{Run: "limits", RawMaxBytes: 4 << 20, DuplicateWindow: time.Minute}, log); err != nil {
		t.Fatalf("EnsureTopology with new limits: %v", err)
	}
	s, err := js.Stream(ctx, "CYCLEGAN_RAW_limits")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != 4<<20 {
		t.Errorf("max bytes = %d after update, want %d", got, 4<<20)
	}
	if got := s.CachedInfo().Config.Duplicates; got != time.Minute {
		t.Errorf("duplicate window = %s after update, want 1m", got)
	}
}

func TestEnsureTopologyIncompatible(t *testing.T) {
	tests := []struct {
		name     string
		existing jetstream.StreamConfig
		want     []string
	}{
		{
			name:     "retention differs",
			existing: jetstream.StreamConfig{Name: "CYCLEGAN_RAW_clash", Subjects: []string{"cyclegan.clash.raw"}, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew},
			want:     []string{"CYCLEGAN_RAW_clash", "retention is Limits, expected WorkQueue", "delete the stream", "another run id"},
		},
		{
			name:     "subject differs",
			existing: jetstream.StreamConfig{Name: "CYCLEGAN_TRAIN_clash", Subjects: []string{"elsewhere.train"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew},
			want:     []string{"CYCLEGAN_TRAIN_clash", "subjects are [elsewhere.train], expected [cyclegan.clash.train]", "delete the stream"},
		},
		{
			name:     "discard policy differs",
			existing: jetstream.StreamConfig{Name: "CYCLEGAN_RAW_clash", Subjects: []string{"cyclegan.clash.raw"}, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardOld},
			want:     []string{"discard policy is DiscardOld, expected DiscardNew"},
		},
		{
			name:     "subject taken by another stream",
			existing: jetstream.StreamConfig{Name: "SOMEONE_ELSE", Subjects: []string{"cyclegan.clash.>"}},
			want:     []string{"subject cyclegan.clash.raw", "already bound to another stream", "another run id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := newTestLogger(t)
			srv := startEmbedded(t, EmbeddedOptions{})
			_, js := connectJS(t, srv.ClientURL(), log)
			if _, err := js.CreateStream(t.Context(), tt.existing); err != nil {
				t.Fatalf("create the existing stream: %v", err)
			}

			_, err := EnsureTopology(t.Context(), js, TopologyConfig{Run: "clash"}, log)
			if !errors.Is(err, ErrTopologyMismatch) {
				t.Fatalf("EnsureTopology error = %v, want one wrapping ErrTopologyMismatch", err)
			}
			if absent := containsAll(err.Error(), tt.want...); len(absent) > 0 {
				t.Errorf("error %q lacks %q", err, absent)
			}
		})
	}
}

func TestEnsureTopologyInvalidRun(t *testing.T) {
	log, _ := newTestLogger(t)
	srv := startEmbedded(t, EmbeddedOptions{})
	_, js := connectJS(t, srv.ClientURL(), log)
	_, err := EnsureTopology(t.Context(), js, TopologyConfig{Run: "bad.run"}, log)
	if !errors.Is(err, ErrInvalidRunID) {
		t.Fatalf("EnsureTopology error = %v, want ErrInvalidRunID", err)
	}
	if !strings.Contains(err.Error(), "bad.run") {
		t.Errorf("error %q does not name the run id", err)
	}
}
