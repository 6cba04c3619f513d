package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

func TestFitWidthCutsLongLines(t *testing.T) {
	if got := fitWidth("abcdef", 0); got != "abcdef" {
		t.Errorf("unknown width changed the line to %q", got)
	}
	if got := fitWidth("abcdef", 10); got != "abcdef" {
		t.Errorf("short line changed to %q", got)
	}
	if got := fitWidth("abcdefghij", 6); got != "abcd…" {
		t.Errorf("fitWidth(…, 6) = %q, want %q", got, "abcd…")
	}
}

func TestStatusLineNamesEveryLoss(t *testing.T) {
	var losses model.Losses
	for i := range losses {
		losses[i] = float64(i) + 0.5
	}
	line := statusLine(trainer.Progress{Step: 5, TotalSteps: 10, Losses: losses, ImagesPerSecond: 4, ETA: time.Minute}, "swd 0.1/0.2")
	for _, want := range append(model.LossNames[:], "step 5/10", "ETA 1m0s", "swd 0.1/0.2", "[==========          ]") {
		if !strings.Contains(line, want) {
			t.Errorf("status line %q lacks %q", line, want)
		}
	}
}

func TestReportRedrawsStatusLineWithNewFigures(t *testing.T) {
	var out strings.Builder
	// fd -1 makes the width unknown, so no line is cut.
	d := &progressDisplay{out: &out, terminal: true, fd: -1}
	d.onStep(trainer.Progress{Step: 500, TotalSteps: 1000})
	d.report(messages.EvalReport{Step: 500, Metrics: map[string]float64{
		messages.MetricSWDAB: 0.125, messages.MetricSWDBA: 0.25,
	}})
	_, redrawn, found := strings.Cut(out.String(), "\n")
	if !found {
		t.Fatalf("no evaluation line in %q", out.String())
	}
	for _, want := range []string{"step 500/1000", "swd 0.125/0.250"} {
		if !strings.Contains(redrawn, want) {
			t.Errorf("status line after the report %q lacks %q", redrawn, want)
		}
	}
}

func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if d := newProgressDisplay(f); d.terminal {
		t.Errorf("%s counts as a terminal, so logs would go to train.log instead of stderr", os.DevNull)
	}
}

func TestWritePrintsAboveStatusLine(t *testing.T) {
	var out strings.Builder
	d := &progressDisplay{out: &out, terminal: true, fd: -1}
	d.onStep(trainer.Progress{Step: 7, TotalSteps: 10})
	if _, err := d.Write([]byte("level=WARN msg=careful\n")); err != nil {
		t.Fatal(err)
	}
	_, after, found := strings.Cut(out.String(), "level=WARN msg=careful\n")
	if !found {
		t.Fatalf("log line missing from %q", out.String())
	}
	if !strings.Contains(after, "step 7/10") {
		t.Errorf("status line not redrawn after the log line: %q", after)
	}
}
