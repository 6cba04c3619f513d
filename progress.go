package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/model"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

// progressDisplay shows the training progress of the one-process run. On a terminal it
// redraws one status line (step, losses, images/s, ETA) at most every redrawInterval and
// prints each evaluation above it. Elsewhere it prints nothing, because the stages' log
// lines already carry the same figures.
type progressDisplay struct {
	out      io.Writer
	terminal bool
	fd       int // file descriptor of the terminal, for its width

	mu        sync.Mutex
	step      int64 // newest step reported by the trainer
	lastDraw  time.Time
	progress  trainer.Progress // newest step's progress, for redrawing the line
	lastEval  string
	lineDrawn bool
}

const redrawInterval = 250 * time.Millisecond

func newProgressDisplay(out io.Writer) *progressDisplay {
	d := &progressDisplay{out: out}
	if f, ok := out.(*os.File); ok {
		// The termios request succeeds only on a terminal, not on /dev/null, which is also a
		// character device.
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			d.terminal = true
			d.fd = int(f.Fd())
		}
	}
	return d
}

// onStep is the trainer's OnStep hook.
func (d *progressDisplay) onStep(p trainer.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.step = p.Step
	d.progress = p
	if !d.terminal {
		return
	}
	if time.Since(d.lastDraw) < redrawInterval && p.Step != p.TotalSteps {
		return
	}
	d.lastDraw = time.Now()
	fmt.Fprintf(d.out, "\r\033[K%s", fitWidth(statusLine(p, d.lastEval), d.width()))
	d.lineDrawn = true
}

// lastStep returns the newest step the trainer reported, 0 before the first.
func (d *progressDisplay) lastStep() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.step
}

// report is the evaluator's OnReport hook.
func (d *progressDisplay) report(r messages.EvalReport) {
	if !d.terminal {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastEval = fmt.Sprintf("swd %.3f/%.3f", r.Metrics[messages.MetricSWDAB], r.Metrics[messages.MetricSWDBA])
	fmt.Fprintf(d.out, "\r\033[K%s\n", evalLine(r))
	if d.lineDrawn {
		// Redrawn with the new figures, which the old line lacked.
		fmt.Fprint(d.out, fitWidth(statusLine(d.progress, d.lastEval), d.width()))
	}
}

// Write prints p, one or more log lines, above the status line and redraws the status line,
// so that warnings reach the terminal while the other logs go to train.log.
func (d *progressDisplay) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := fmt.Fprintf(d.out, "\r\033[K%s", p); err != nil {
		return 0, err
	}
	if d.lineDrawn {
		fmt.Fprint(d.out, fitWidth(statusLine(d.progress, d.lastEval), d.width()))
	}
	return len(p), nil
}

// width returns the terminal's width in columns, or 0 when it cannot be read.
func (d *progressDisplay) width() int {
	ws, err := unix.IoctlGetWinsize(d.fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// fitWidth cuts line to fit in one terminal row of width columns (0 = unknown: no cut),
// because a wrapped status line cannot be redrawn in place with a carriage return.
func fitWidth(line string, width int) string {
	if width <= 1 {
		return line
	}
	runes := []rune(line)
	if len(runes) < width {
		return line
	}
	return string(runes[:width-2]) + "…"
}

// finish ends the status line so that later output starts on a new line.
func (d *progressDisplay) finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lineDrawn {
		fmt.Fprintln(d.out)
		d.lineDrawn = false
	}
}

// statusLine formats one training step: a bar, the step, epoch, the eight losses by their
// reference names, throughput, ETA and the latest evaluation.
func statusLine(p trainer.Progress, lastEval string) string {
	const barWidth = 20
	var b strings.Builder
	if p.TotalSteps > 0 {
		filled := int(int64(barWidth) * min(p.Step, p.TotalSteps) / p.TotalSteps)
		fmt.Fprintf(&b, "[%s%s] ", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled))
		fmt.Fprintf(&b, "step %d/%d", p.Step, p.TotalSteps)
	} else {
		fmt.Fprintf(&b, "step %d", p.Step)
	}
	fmt.Fprintf(&b, " ep %d |", p.Epoch)
	for i, name := range model.LossNames {
		fmt.Fprintf(&b, " %s %.2f", name, p.Losses[i])
	}
	fmt.Fprintf(&b, " | %.1f img/s", p.ImagesPerSecond)
	if p.ETA > 0 {
		fmt.Fprintf(&b, " | ETA %s", p.ETA.Round(time.Second))
	}
	if lastEval != "" {
		fmt.Fprintf(&b, " | %s", lastEval)
	}
	return b.String()
}

// evalLine formats an evaluation report as one line of figures.
func evalLine(r messages.EvalReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "eval step %d:", r.Step)
	for _, name := range messages.MetricNames() {
		if v, ok := r.Metrics[name]; ok {
			fmt.Fprintf(&b, " %s %.4f", name, v)
		}
	}
	return b.String()
}
