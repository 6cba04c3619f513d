// Package lossplot draws the curves of a training run as a PNG file, so that a user without
// Grafana can still follow how the losses and evaluation figures change. It reads the run's
// metrics.jsonl, where the trainer appends a "train" record with the eight losses every few
// steps and the evaluator an "eval" record per evaluated checkpoint. The chart has three panels:
// the generators' losses, the discriminators' losses and the sliced Wasserstein distance on the
// test set. The trainer calls Write after each checkpoint it stores.
package lossplot

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Stats counts the lines of metrics.jsonl that one Write call read.
type Stats struct {
	TrainRecords int // "train" records drawn
	EvalRecords  int // "eval" records drawn
	// SkippedLines are lines that are not a JSON object with a kind and a step. Records of
	// another kind, and blank lines, are not counted.
	SkippedLines int
}

// FileName is the chart's name in a run's output folder, <output>/<run>/. The trainer redraws
// it after each checkpoint and the evaluator after each evaluation.
const FileName = "loss.png"

// record is the part of a metrics.jsonl line that the chart uses. Train records carry losses,
// eval records carry metrics.
type record struct {
	Kind    string             `json:"kind"`
	Step    *int64             `json:"step"`
	Losses  map[string]float64 `json:"losses"`
	Metrics map[string]float64 `json:"metrics"`
}

// history holds the records to draw, each kind sorted by step.
type history struct {
	train []record
	eval  []record
}

// Write reads the records in metricsPath and writes the chart to pngPath as a PNG of Width ×
// Height pixels. It replaces pngPath through a temporary file and a rename, so a reader sees the
// old chart or the new one, never a part. A missing or empty metricsPath gives a chart with
// empty panels, because the trainer creates metrics.jsonl only at its first logged step.
func Write(metricsPath, pngPath string) (Stats, error) {
	hist, stats, err := readHistory(metricsPath)
	if err != nil {
		return stats, err
	}
	data, err := drawChart(hist)
	if err != nil {
		return stats, fmt.Errorf("draw the chart of %s: %w", metricsPath, err)
	}
	if err := writeFileAtomic(pngPath, data); err != nil {
		return stats, err
	}
	return stats, nil
}

// readHistory reads metrics.jsonl at path. A missing file reads as no records.
func readHistory(path string) (history, Stats, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return history{}, Stats{}, nil
	}
	if err != nil {
		return history{}, Stats{}, fmt.Errorf("read metrics records: %w", err)
	}
	defer f.Close()
	hist, stats, err := parseHistory(f)
	if err != nil {
		return history{}, stats, fmt.Errorf("read metrics records from %s: %w", path, err)
	}
	return hist, stats, nil
}

// parseHistory decodes the JSON lines of r. It keeps one record per kind and step: a resumed run
// logs the steps after its checkpoint again, and the later line, from the run that went on, wins.
func parseHistory(r io.Reader) (history, Stats, error) {
	var stats Stats
	train := map[int64]record{}
	eval := map[int64]record{}
	reader := bufio.NewReader(r)
	for {
		// ReadBytes has no line length limit, unlike bufio.Scanner, so one long line cannot stop
		// the read.
		line, err := reader.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec record
			switch {
			case json.Unmarshal(line, &rec) != nil || rec.Kind == "" || rec.Step == nil:
				stats.SkippedLines++
			case rec.Kind == "train":
				train[*rec.Step] = rec
			case rec.Kind == "eval":
				eval[*rec.Step] = rec
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return history{}, stats, err
		}
	}
	hist := history{train: sortedByStep(train), eval: sortedByStep(eval)}
	stats.TrainRecords, stats.EvalRecords = len(hist.train), len(hist.eval)
	return hist, stats, nil
}

func sortedByStep(records map[int64]record) []record {
	sorted := make([]record, 0, len(records))
	for _, rec := range records {
		sorted = append(sorted, rec)
	}
	slices.SortFunc(sorted, func(a, b record) int { return cmp.Compare(*a.Step, *b.Step) })
	return sorted
}

// series returns the points (step, values[name]) of the records that have a finite value for
// name.
func series(records []record, values func(record) map[string]float64, name string) [][2]float64 {
	var points [][2]float64
	for _, rec := range records {
		v, ok := values(rec)[name]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		points = append(points, [2]float64{float64(*rec.Step), v})
	}
	return points
}

// writeFileAtomic writes data to a temporary file next to path and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		// CreateTemp makes the file readable by its owner only, but the chart is for anyone who
		// may read the run's folder, like the sample grids.
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
