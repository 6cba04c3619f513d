package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gocyclegan/cyclegan/model"
)

// Progress describes the latest applied training step, for a progress
// display.
type Progress struct {
	Run          string
	Step         int64 // steps applied so far, this one included
	TotalSteps   int64 // the step at which the run ends
	Epoch        int64 // 0-based epoch of this step
	Losses       model.Losses
	LearningRate float64
	// ImagesPerSecond is the recent throughput, A and B images counted
	// separately, waits for batches included; 0 until two steps are known.
	ImagesPerSecond float64
	// ETA estimates the time to TotalSteps at the recent pace; 0 when
	// unknown.
	ETA time.Duration
}

// rateMeter estimates the pace of the latest steps from a window of their
// finishing times.
type rateMeter struct {
	times []time.Time // ring of finishing times
	next  int
	count int
}

// rateWindow is the number of steps the pace is averaged over.
const rateWindow = 50

func newRateMeter() *rateMeter { return &rateMeter{times: make([]time.Time, rateWindow)} }

func (r *rateMeter) add(t time.Time) {
	r.times[r.next] = t
	r.next = (r.next + 1) % len(r.times)
	r.count = min(r.count+1, len(r.times))
}

// stepPeriod returns the mean time between the steps in the window, or 0
// with fewer than two.
func (r *rateMeter) stepPeriod() time.Duration {
	if r.count < 2 {
		return 0
	}
	newest := r.times[(r.next-1+len(r.times))%len(r.times)]
	oldest := r.times[(r.next-r.count+len(r.times))%len(r.times)]
	return newest.Sub(oldest) / time.Duration(r.count-1)
}

// trainRecord is one "train" line of metrics.jsonl. The evaluator appends
// "eval" lines to the same file.
type trainRecord struct {
	Kind            string             `json:"kind"`
	Step            int64              `json:"step"`
	Epoch           int64              `json:"epoch"`
	LearningRate    float64            `json:"lr"`
	Losses          map[string]float64 `json:"losses"`
	ImagesPerSecond float64            `json:"images_per_second"`
	Time            time.Time          `json:"time"`
}

// appendRecord appends one JSON line to path. The file is opened with
// O_APPEND and the line is written with one write, so lines of the trainer
// and the evaluator do not interleave.
func appendRecord(path string, record any) error {
	line, err := json.Marshal(record)
	if err != nil {
		return fmt.Errorf("encode record for %s: %w", path, err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	_, err = f.Write(line)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}

// lossMap returns the losses by name.
func lossMap(l model.Losses) map[string]float64 {
	m := make(map[string]float64, len(l))
	for i, name := range model.LossNames {
		m[name] = l[i]
	}
	return m
}
