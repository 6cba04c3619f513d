package trainer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/lossplot"
)

// ErrCheckpointMismatch is returned when the checkpoint named by the run
// state does not match its Object Store digest or its announcement.
var ErrCheckpointMismatch = errors.New("checkpoint does not match its digest")

// LatestFile is the name of the newest checkpoint's copy in <output>/<run>/.
const LatestFile = "latest.safetensors"

// LossPlotFile is the name of the chart of the losses and SWD in <output>/<run>/, drawn from
// metrics.jsonl after each checkpoint and each evaluation.
const LossPlotFile = lossplot.FileName

// MetricsFile is the name of the JSON-lines file of training and evaluation
// records in <output>/<run>/.
const MetricsFile = "metrics.jsonl"

// saveCheckpoint stores m's state as the checkpoint of its current step:
// it puts the object, prunes old ones, announces it, records it in the run
// state and writes latest.safetensors, in that order. Then it redraws
// loss.png, whose failure it only logs.
func (t *Trainer) saveCheckpoint(ctx context.Context, m *model.CycleGAN) (*messages.Checkpoint, error) {
	step := m.Steps()
	data, err := m.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint at step %d: %w", step, err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	name := pipeline.CheckpointName(t.run, uint64(step))

	info, err := t.topo.Checkpoints.PutBytes(ctx, name, data)
	if err != nil {
		return nil, fmt.Errorf("put checkpoint %s (%d bytes): %w", name, len(data), err)
	}
	pruned, err := pipeline.PruneCheckpoints(ctx, t.topo.Checkpoints, t.run, t.cfg.Retention)
	if err != nil {
		// The new checkpoint is stored; a failed prune is retried after the
		// next put.
		t.log.Warn("pruning old checkpoints failed", "err", err)
	}
	if len(pruned) > 0 {
		t.log.Debug("pruned checkpoints", "objects", pruned)
	}

	ann := &messages.Checkpoint{
		Run:     t.run,
		Step:    step,
		Epoch:   m.Config().Epoch(step),
		Object:  name,
		Size:    int64(len(data)),
		SHA256:  digest,
		Created: info.ModTime.UTC(),
	}
	if ann.Created.IsZero() {
		ann.Created = t.now().UTC()
	}
	payload, err := messages.EncodeCheckpoint(ann)
	if err != nil {
		return nil, fmt.Errorf("encode announcement of %s: %w", name, err)
	}
	// The digest in the id keeps a checkpoint of a run started over with
	// --fresh from being dropped as a duplicate of the old one at its step.
	msgID := fmt.Sprintf("%s-step-%d-%s", t.run, step, digest[:16])
	if _, err := t.announcer.Publish(ctx, msgID, payload); err != nil {
		return nil, fmt.Errorf("announce checkpoint %s: %w", name, err)
	}

	if _, err := t.store.Modify(ctx, func(s *pipeline.RunState, _ bool) error {
		s.Status = pipeline.StatusRunning
		s.Checkpoint = name
		s.Step = uint64(step)
		s.Epoch = uint64(ann.Epoch)
		s.Error = ""
		return nil
	}); err != nil {
		return nil, fmt.Errorf("record checkpoint %s in the run state: %w", name, err)
	}

	if err := writeFileAtomic(filepath.Join(t.runDir, LatestFile), data); err != nil {
		return nil, err
	}
	t.metrics.checkpoints.WithLabelValues(t.run).Inc()
	t.lastCheckpoint = step
	t.log.Info("checkpoint stored", "object", name, "step", step, "epoch", ann.Epoch,
		"bytes", len(data), "sha256", digest, "pruned", len(pruned))
	t.writeLossPlot(step)
	return ann, nil
}

// writeLossPlot redraws loss.png from metrics.jsonl. A chart that cannot be
// drawn is logged and training goes on: the figures stay in metrics.jsonl
// and Prometheus.
func (t *Trainer) writeLossPlot(step int64) {
	path := filepath.Join(t.runDir, LossPlotFile)
	stats, err := lossplot.Write(filepath.Join(t.runDir, MetricsFile), path)
	if err != nil {
		t.log.Warn("loss chart not written", "step", step, "path", path, "err", err)
		return
	}
	// A malformed line stays in the file, so warn only when more appear.
	if stats.SkippedLines > t.lossPlotSkipped {
		t.log.Warn("loss chart drawn without malformed metrics records", "path", path,
			"skipped_lines", stats.SkippedLines)
	}
	t.lossPlotSkipped = stats.SkippedLines
	t.log.Debug("loss chart written", "path", path, "train_records", stats.TrainRecords,
		"eval_records", stats.EvalRecords)
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path, so a reader sees the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		// CreateTemp makes the file private, but a checkpoint is for anyone who can read the run.
		err = tmp.Chmod(0o644)
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadCheckpoint fetches the object name, checks its SHA-256 against the
// digest the Object Store recorded and against the run's latest
// announcement when that announces the same object, and returns the bytes
// and their digest in lowercase hex.
func (t *Trainer) loadCheckpoint(ctx context.Context, name string) ([]byte, string, error) {
	res, err := t.topo.Checkpoints.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, "", fmt.Errorf("checkpoint %s named by the run state is not in the Object Store: %w (start over with --fresh)", name, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("get checkpoint %s: %w", name, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, "", fmt.Errorf("get checkpoint %s: %w", name, err)
	}
	// The reader fails with jetstream.ErrDigestMismatch when the chunks do
	// not add up to the recorded digest.
	data, err := io.ReadAll(res)
	if err != nil {
		return nil, "", fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])

	recorded, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint %s: Object Store digest %q: %w", name, info.Digest, err)
	}
	if !bytes.Equal(recorded, sum[:]) {
		return nil, "", fmt.Errorf("checkpoint %s: %w: SHA-256 %s, Object Store recorded %s", name, ErrCheckpointMismatch, digest, hex.EncodeToString(recorded))
	}

	ann, err := t.lastAnnouncement(ctx)
	switch {
	case err != nil:
		t.log.Warn("reading the latest checkpoint announcement failed, digest compared with the Object Store's only", "object", name, "err", err)
	case ann == nil || ann.Object != name:
		t.log.Debug("latest announcement is for another checkpoint, not compared", "object", name)
	case ann.SHA256 != digest || ann.Size != int64(len(data)):
		return nil, "", fmt.Errorf("checkpoint %s: %w: SHA-256 %s and %d bytes, announced %s and %d bytes",
			name, ErrCheckpointMismatch, digest, len(data), ann.SHA256, ann.Size)
	}
	return data, digest, nil
}

// lastAnnouncement returns the newest checkpoint announcement of the run,
// or nil when there is none.
func (t *Trainer) lastAnnouncement(ctx context.Context) (*messages.Checkpoint, error) {
	stream, err := t.js.Stream(ctx, t.topo.CheckpointStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", t.topo.CheckpointStream, err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, t.topo.CheckpointSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get last message of %s: %w", t.topo.CheckpointSubject, err)
	}
	ann, err := messages.DecodeCheckpoint(msg.Data)
	if err != nil {
		return nil, fmt.Errorf("decode announcement at stream sequence %d: %w", msg.Sequence, err)
	}
	return ann, nil
}

// configDifferences lists the fields in which the checkpoint's config
// differs from the settings' config, as "<json name>: checkpoint <value>,
// settings <value>" strings.
func configDifferences(checkpoint, settings model.Config) []string {
	var diffs []string
	va, vb := reflect.ValueOf(checkpoint), reflect.ValueOf(settings)
	typ := va.Type()
	for i := range typ.NumField() {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if x == y {
			continue
		}
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = typ.Field(i).Name
		}
		diffs = append(diffs, fmt.Sprintf("%s: checkpoint %v, settings %v", name, x, y))
	}
	return diffs
}

// Reset deletes what a run has made so far, so that it starts over at step
// 0: every checkpoint object of the run, the run's checkpoint announcements
// and evaluation reports, latest.safetensors and loss.png. It renames an existing
// metrics.jsonl to metrics.jsonl.<UTC time> so that the evaluator starts a
// new history, and writes the run state as running at step 0 with no
// checkpoint. The raw and train streams are kept: their pairs are as good
// for a new run as for the old one.
//
// The Trainer calls Reset when Config.Fresh is set. A one-process run that
// starts the evaluator together with the trainer calls it before starting
// any stage, so that the evaluator does not read the old history.
func Reset(ctx context.Context, topo *pipeline.Topology, output string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	run := topo.Run

	deleted := 0
	infos, err := topo.Checkpoints.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("reset run %s: list checkpoints: %w", run, err)
	}
	for _, info := range infos {
		if info.Deleted || !strings.HasPrefix(info.Name, run+"/") {
			continue
		}
		if err := topo.Checkpoints.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("reset run %s: delete checkpoint %s: %w", run, info.Name, err)
		}
		deleted++
	}

	for _, name := range []string{topo.CheckpointStream, topo.EvalStream} {
		stream, err := topo.JetStream.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("reset run %s: look up stream %s: %w", run, name, err)
		}
		if err := stream.Purge(ctx); err != nil {
			return fmt.Errorf("reset run %s: purge stream %s: %w", run, name, err)
		}
	}

	runDir := filepath.Join(output, run)
	for _, name := range []string{LatestFile, LossPlotFile} {
		if err := os.Remove(filepath.Join(runDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reset run %s: %w", run, err)
		}
	}
	store, err := pipeline.NewRunStore(topo.Runs, run, nil, log)
	if err != nil {
		return fmt.Errorf("reset run %s: %w", run, err)
	}
	_, err = store.Modify(ctx, func(s *pipeline.RunState, _ bool) error {
		*s = pipeline.RunState{Status: pipeline.StatusRunning}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reset run %s: %w", run, err)
	}

	metricsPath := filepath.Join(runDir, MetricsFile)
	archived := metricsPath + "." + time.Now().UTC().Format("20060102T150405.000Z")
	switch err := os.Rename(metricsPath, archived); {
	case err == nil:
		log.Info("renamed the old metrics file", "path", archived)
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("reset run %s: %w", run, err)
	}
	log.Info("run reset to step 0", "deleted_checkpoints", deleted,
		"purged_streams", []string{topo.CheckpointStream, topo.EvalStream})
	return nil
}
