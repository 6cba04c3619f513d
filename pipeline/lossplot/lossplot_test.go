package lossplot

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// trainLine returns a train record as the trainer writes it, with losses that shrink with the
// step.
func trainLine(t *testing.T, step int) string {
	t.Helper()
	losses := map[string]float64{}
	for i, name := range []string{"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"} {
		losses[name] = float64(i+1) / float64(step+1)
	}
	line, err := json.Marshal(map[string]any{
		"kind": "train", "step": step, "epoch": 0, "lr": 0.0002, "losses": losses,
		"images_per_second": 10.0, "time": "2026-01-02T03:04:05Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

func evalLine(step int) string {
	return fmt.Sprintf(`{"kind":"eval","step":%d,"epoch":0,"metrics":{"swd_AB":%g,"swd_BA":%g,"swd_baseline":0.09,"l1_AB":0.3},"samples":["samples/step-%d.png"],"time":"2026-01-02T03:04:05Z"}`,
		step, 1.0/float64(step), 1.1/float64(step), step)
}

// decodePNG opens path and checks that it is a PNG of Width × Height pixels.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open the chart: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s as PNG: %v", path, err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: Width, Y: Height}) {
		t.Errorf("chart size %v, want %dx%d", got, Width, Height)
	}
	return img
}

// curvePixels counts the pixels of img left of the legend column that have exactly the color c.
// A line draws its color unblended along its middle, and the legends draw right of the plots, so
// a count above zero means the curves in that color are drawn.
func curvePixels(img image.Image, c color.Color) int {
	want := color.RGBAModel.Convert(c)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X-legendWidth; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == want {
				n++
			}
		}
	}
	return n
}

// Colors of the curve pairs, one per panel row of curves.
var (
	generatorColor     = generatorPanel.curves[0].color
	cycleColor         = generatorPanel.curves[2].color
	identityColor      = generatorPanel.curves[4].color
	discriminatorColor = discriminatorPanel.curves[0].color
	swdColor           = swdPanel.curves[0].color
	allColors          = []color.Color{generatorColor, cycleColor, identityColor, discriminatorColor, swdColor}
	trainColors        = []color.Color{generatorColor, cycleColor, identityColor, discriminatorColor}
)

// checkCurves checks that the curves of the colors in drawn are drawn and the others are not.
func checkCurves(t *testing.T, img image.Image, drawn []color.Color) {
	t.Helper()
	for _, c := range allColors {
		n := curvePixels(img, c)
		switch {
		case slices.Contains(drawn, c) && n == 0:
			t.Errorf("no curve of color %v drawn", c)
		case !slices.Contains(drawn, c) && n > 0:
			t.Errorf("%d pixels of color %v drawn, want no curve of it", n, c)
		}
	}
}

func TestWriteReadsRecords(t *testing.T) {
	var lines []string
	for step := 10; step <= 200; step += 10 {
		lines = append(lines, trainLine(t, step))
		if step%50 == 0 {
			lines = append(lines, evalLine(step))
		}
	}

	tests := []struct {
		name       string
		lines      []string
		want       Stats
		wantCurves []color.Color
	}{
		{
			name:       "train and eval records",
			lines:      lines,
			want:       Stats{TrainRecords: 20, EvalRecords: 4},
			wantCurves: allColors,
		},
		{
			name: "malformed lines skipped",
			lines: append([]string{
				`{"kind":"train","step":`,         // cut off by a crash
				`not json`,                        //
				`{"kind":"train","losses":{}}`,    // no step
				`{"step":5,"losses":{"G_A":1}}`,   // no kind
				`{"kind":"train","step":"seven"}`, // step of the wrong type
				"",                                // blank lines are not counted
				`{"kind":"other","step":3}`,       // another kind is ignored, not counted
			}, lines...),
			want:       Stats{TrainRecords: 20, EvalRecords: 4, SkippedLines: 5},
			wantCurves: allColors,
		},
		{
			name:       "resumed run logs steps again",
			lines:      append(append([]string{}, lines...), trainLine(t, 190), trainLine(t, 200), trainLine(t, 210)),
			want:       Stats{TrainRecords: 21, EvalRecords: 4},
			wantCurves: allColors,
		},
		{
			name:       "eval records only",
			lines:      []string{evalLine(5), evalLine(10)},
			want:       Stats{EvalRecords: 2},
			wantCurves: []color.Color{swdColor},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			metricsPath := filepath.Join(dir, "metrics.jsonl")
			if err := os.WriteFile(metricsPath, []byte(strings.Join(tc.lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			pngPath := filepath.Join(dir, "loss.png")

			stats, err := Write(metricsPath, pngPath)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if stats != tc.want {
				t.Errorf("stats %+v, want %+v", stats, tc.want)
			}
			checkCurves(t, decodePNG(t, pngPath), tc.wantCurves)
		})
	}
}

func TestWriteWithoutRecords(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
	}{
		{name: "empty file", content: new(string)},
		{name: "missing file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			metricsPath := filepath.Join(dir, "metrics.jsonl")
			if tc.content != nil {
				if err := os.WriteFile(metricsPath, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pngPath := filepath.Join(dir, "loss.png")

			stats, err := Write(metricsPath, pngPath)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if stats != (Stats{}) {
				t.Errorf("stats %+v, want zero", stats)
			}
			checkCurves(t, decodePNG(t, pngPath), nil)
		})
	}
}

func TestWriteReplacesChart(t *testing.T) {
	dir := t.TempDir()
	metricsPath := filepath.Join(dir, "metrics.jsonl")
	pngPath := filepath.Join(dir, "loss.png")
	if err := os.WriteFile(pngPath, []byte("old chart"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metricsPath, []byte(trainLine(t, 1)+"\n"+trainLine(t, 2)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := Write(metricsPath, pngPath); err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkCurves(t, decodePNG(t, pngPath), trainColors)
	info, err := os.Stat(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("chart mode %v, want 0644", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want metrics.jsonl and loss.png only (temporary file left?)", len(entries))
	}
}

func TestWriteFailsForMissingFolder(t *testing.T) {
	dir := t.TempDir()
	metricsPath := filepath.Join(dir, "metrics.jsonl")
	if err := os.WriteFile(metricsPath, []byte(trainLine(t, 1)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(dir, "no-such-folder", "loss.png")

	_, err := Write(metricsPath, pngPath)
	if err == nil {
		t.Fatal("Write into a missing folder returned nil")
	}
	if !strings.Contains(err.Error(), pngPath) {
		t.Errorf("error %q does not name %s", err, pngPath)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}
