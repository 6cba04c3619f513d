package evaluator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/gocyclegan/cyclegan/messages"
)

// MetricsFile is the name of the JSON Lines file of a run's losses and evaluation
// figures, in the run's output folder. The trainer appends "kind":"train" lines and the
// evaluator "kind":"eval" lines.
const MetricsFile = "metrics.jsonl"

// kindEval is the value of the "kind" key of the evaluator's lines.
const kindEval = "eval"

// EvalLine is one evaluation in metrics.jsonl:
//
//	{"kind":"eval","step":2000,"epoch":1,"metrics":{"cycle_l1_AB":0.08,…},"samples":["samples/step-2000.png"],"time":"2025-01-02T03:04:05.123Z"}
//
// Metrics has the keys of an evaluation report (messages.MetricL1AB and the others),
// and Samples are paths relative to the run's output folder.
type EvalLine struct {
	Kind    string             `json:"kind"`
	Step    int64              `json:"step"`
	Epoch   int64              `json:"epoch"`
	Metrics map[string]float64 `json:"metrics"`
	Samples []string           `json:"samples"`
	Time    time.Time          `json:"time"`
}

// ReadEvalLines returns the "kind":"eval" lines of the metrics file at name in file
// order, and the number of lines that are not valid JSON objects, such as a line cut
// short by a crash. A missing file has no lines.
func ReadEvalLines(name string) (lines []EvalLine, invalid int, err error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()

	r := bufio.NewReader(f)
	for {
		raw, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return nil, 0, fmt.Errorf("read %s: %w", name, readErr)
		}
		if raw = bytes.TrimSpace(raw); len(raw) > 0 {
			var kind struct {
				Kind string `json:"kind"`
			}
			if err := json.Unmarshal(raw, &kind); err != nil {
				invalid++
			} else if kind.Kind == kindEval {
				var line EvalLine
				if err := json.Unmarshal(raw, &line); err != nil {
					invalid++
				} else {
					lines = append(lines, line)
				}
			}
		}
		if readErr != nil {
			return lines, invalid, nil
		}
	}
}

// AppendEvalLine appends line to the metrics file at name as one line, creating the file
// if needed. The file is opened with O_APPEND and the line written with one write, so
// lines that another process appends to the same file (the trainer's) never interleave
// with it on a local file system.
func AppendEvalLine(name string, line EvalLine) error {
	line.Kind = kindEval
	data, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("encode eval line of step %d: %w", line.Step, err)
	}
	data = append(data, '\n')

	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	return nil
}

// MetricsOf returns the figures and baselines under their report names. Figures that
// were not computed (NaN) are left out, so paired L1 and its baseline are absent
// together when no test names match.
func MetricsOf(f Figures, l1Baseline, swdBaseline float64) map[string]float64 {
	all := map[string]float64{
		messages.MetricL1AB:        f.L1AB,
		messages.MetricL1BA:        f.L1BA,
		messages.MetricL1Baseline:  l1Baseline,
		messages.MetricCycleL1AB:   f.CycleL1AB,
		messages.MetricCycleL1BA:   f.CycleL1BA,
		messages.MetricSWDAB:       f.SWDAB,
		messages.MetricSWDBA:       f.SWDBA,
		messages.MetricSWDBaseline: swdBaseline,
	}
	out := make(map[string]float64, len(all))
	for k, v := range all {
		if !math.IsNaN(v) {
			out[k] = v
		}
	}
	return out
}

// FiguresOf is the inverse of MetricsOf for the figures: a missing metric becomes NaN.
func FiguresOf(metrics map[string]float64) Figures {
	get := func(name string) float64 {
		if v, ok := metrics[name]; ok {
			return v
		}
		return nan()
	}
	return Figures{
		L1AB:      get(messages.MetricL1AB),
		L1BA:      get(messages.MetricL1BA),
		CycleL1AB: get(messages.MetricCycleL1AB),
		CycleL1BA: get(messages.MetricCycleL1BA),
		SWDAB:     get(messages.MetricSWDAB),
		SWDBA:     get(messages.MetricSWDBA),
	}
}

// indexEntry returns the index page row of line.
func (line EvalLine) indexEntry() IndexEntry {
	return IndexEntry{
		Step:        line.Step,
		Epoch:       int(line.Epoch),
		EvaluatedAt: line.Time,
		Figures:     FiguresOf(line.Metrics),
		Samples:     line.Samples,
	}
}

func nan() float64 { return math.NaN() }
