package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/pipeline"
)

const exportUsage = `cyclegan export [--run RUN] [--step N] [NATS flags] OUT

Copies a checkpoint of a run from the NATS Object Store to the file OUT: the one at step N,
or with --step 0 the newest one stored. The file works with "cyclegan translate" and with
PyTorch (safetensors, reference state-dict names).

`

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	common := pipeline.DefaultCommonConfig()
	common.Run = datasets.DefaultName
	step := 0
	timeout := time.Minute
	fset := pipeline.NewFlagSet("cyclegan export", nil)
	common.Register(fset)
	fset.Int(&step, "step", "", "training step of the checkpoint to export; 0 exports the newest one", pipeline.AtLeast(0))
	fset.Duration(&timeout, "timeout", "time allowed to connect and download", pipeline.AtLeast(time.Second))
	if err := parseFlags(fset, args, stdout, exportUsage); err != nil {
		return err
	}
	if len(fset.Args()) != 1 {
		return fmt.Errorf("want one output file, got %d arguments; %w", len(fset.Args()), errUsage)
	}
	out := fset.Args()[0]

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := pipeline.NewLogger(stderr, common.LogLevel)
	nc, err := pipeline.Connect(ctx, common.Conn("cyclegan-export", log))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", strings.Join(common.NATSURLs, ","), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream: %w", err)
	}
	store, err := js.ObjectStore(ctx, pipeline.CheckpointBucket)
	if err != nil {
		return fmt.Errorf("open checkpoint bucket %s (has a trainer run against this server?): %w", pipeline.CheckpointBucket, err)
	}

	name := pipeline.CheckpointName(common.Run, uint64(step))
	if step == 0 {
		name, err = newestCheckpoint(ctx, store, common.Run)
		if err != nil {
			return err
		}
	}
	data, err := store.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		steps, _ := storedSteps(ctx, store, common.Run)
		return fmt.Errorf("checkpoint %s is not stored; steps stored for run %q: %v", name, common.Run, steps)
	}
	if err != nil {
		return fmt.Errorf("get checkpoint %s: %w", name, err)
	}
	if err := writeFileAtomic(out, data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	log.Info("checkpoint exported", slog.String("object", name), slog.String("file", out),
		slog.Int("bytes", len(data)), slog.String("sha256", hex.EncodeToString(sum[:])))
	fmt.Fprintln(stdout, out)
	return nil
}

// newestCheckpoint returns the object name of run's checkpoint with the highest step.
func newestCheckpoint(ctx context.Context, store jetstream.ObjectStore, run string) (string, error) {
	steps, err := storedSteps(ctx, store, run)
	if err != nil {
		return "", err
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("run %q has no checkpoint in bucket %s: check --run, or train first", run, pipeline.CheckpointBucket)
	}
	return pipeline.CheckpointName(run, slices.Max(steps)), nil
}

// storedSteps returns the steps of run's checkpoints in the Object Store, in ascending order.
func storedSteps(ctx context.Context, store jetstream.ObjectStore, run string) ([]uint64, error) {
	infos, err := store.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var steps []uint64
	for _, info := range infos {
		r, step, err := pipeline.ParseCheckpointName(info.Name)
		if err != nil || r != run || info.Deleted {
			continue
		}
		steps = append(steps, step)
	}
	slices.Sort(steps)
	return steps, nil
}

// writeFileAtomic writes data to path through a temporary file in the same folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".export-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private, but an exported checkpoint is an ordinary output file.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
