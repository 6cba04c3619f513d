package main

import (
	"strings"
	"testing"
	"time"

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
