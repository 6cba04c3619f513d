package evaluator

import (
	"bytes"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// SampleRow is one test image and what the generators make of it in one direction: for
// A→B→A, Real is a, Fake is G_A(a) and Reconstructed is G_B(G_A(a)).
type SampleRow struct {
	Real, Fake, Reconstructed image.Image
}

// Sample grid geometry, in pixels.
const (
	GridMargin = 4  // around the grid and between cells of one direction
	GridGap    = 16 // between the A→B→A block and the B→A→B block
)

// gridBackground is the colour of margins and empty cells. Mid grey sets off images with
// white or black backgrounds.
var gridBackground = color.NRGBA{0x80, 0x80, 0x80, 0xff}

// SamplesDir is the folder of the sample grids, relative to a run's output folder.
const SamplesDir = "samples"

// SamplePath returns the path of the sample grid of step relative to the run's output
// folder, samples/step-<step>.png, in slash form for use in links.
func SamplePath(step int64) string {
	return path.Join(SamplesDir, fmt.Sprintf("step-%d.png", step))
}

// RenderSampleGrid draws both directions into one image. Row r holds ab[r] in columns 0–2
// (real A, fake B, reconstructed A) and ba[r] in columns 3–5 (real B, fake A, reconstructed
// B). Every cell is as large as the largest image, and an image sits at its cell's top-left
// corner. A direction with fewer rows leaves its lower cells empty.
//
// Cell (row r, column c) starts at x = GridMargin + (c/3)·(3·cell + 2·GridMargin +
// GridGap) + (c%3)·(cell + GridMargin) and y = GridMargin + r·(cell + GridMargin).
func RenderSampleGrid(ab, ba []SampleRow) (*image.NRGBA, error) {
	if len(ab) == 0 && len(ba) == 0 {
		return nil, fmt.Errorf("sample grid: %w", ErrEmptySet)
	}
	blocks := [2][]SampleRow{ab, ba}
	cellW, cellH := 0, 0
	for k, rows := range blocks {
		for r, row := range rows {
			for c, img := range row.images() {
				if img == nil {
					return nil, fmt.Errorf("sample grid: block %d row %d column %d has no image: %w", k, r, c, ErrEmptySet)
				}
				cellW = max(cellW, img.Bounds().Dx())
				cellH = max(cellH, img.Bounds().Dy())
			}
		}
	}

	blockW := 3*cellW + 2*GridMargin
	rows := max(len(ab), len(ba))
	width := 2*GridMargin + 2*blockW + GridGap
	height := GridMargin + rows*(cellH+GridMargin)
	grid := image.NewNRGBA(image.Rect(0, 0, width, height))
	draw.Draw(grid, grid.Bounds(), image.NewUniform(gridBackground), image.Point{}, draw.Src)

	for k, block := range blocks {
		for r, row := range block {
			for c, img := range row.images() {
				x := GridMargin + k*(blockW+GridGap) + c*(cellW+GridMargin)
				y := GridMargin + r*(cellH+GridMargin)
				b := img.Bounds()
				dst := image.Rect(x, y, x+b.Dx(), y+b.Dy())
				// Over, not Src, so a translucent source shows the background rather than
				// replacing it with transparency.
				draw.Draw(grid, dst, img, b.Min, draw.Over)
			}
		}
	}
	return grid, nil
}

func (r SampleRow) images() [3]image.Image {
	return [3]image.Image{r.Real, r.Fake, r.Reconstructed}
}

// WriteSampleGrid renders the grid of step (see RenderSampleGrid) and writes it as PNG to
// <dir>/samples/step-<step>.png, replacing the file atomically. It returns SamplePath(step).
func WriteSampleGrid(dir string, step int64, ab, ba []SampleRow) (string, error) {
	grid, err := RenderSampleGrid(ab, ba)
	if err != nil {
		return "", err
	}
	rel := SamplePath(step)
	name := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return "", fmt.Errorf("create samples folder: %w", err)
	}
	err = writeFileAtomic(name, func(w io.Writer) error { return png.Encode(w, grid) })
	if err != nil {
		return "", err
	}
	return rel, nil
}

// IndexEntry is one evaluated checkpoint on the index page.
type IndexEntry struct {
	Step        int64
	Epoch       int
	EvaluatedAt time.Time
	Figures     Figures
	Samples     []string // sample grid paths relative to the index, in slash form
}

// IndexPage is the content of a run's index.html.
type IndexPage struct {
	Run         string
	L1Baseline  float64 // mean |a − b| over same-name test pairs, NaN when not computed
	SWDBaseline float64 // SWD(testA, testB), NaN when not computed
	Entries     []IndexEntry
}

// IndexFile is the name of the index page in a run's output folder.
const IndexFile = "index.html"

// WriteIndex renders page to <dir>/index.html, newest step first, and replaces the file
// atomically so a browser never loads half a page. The caller keeps the entries of earlier
// evaluations and passes all of them every time.
func WriteIndex(dir string, page IndexPage) error {
	entries := slices.Clone(page.Entries)
	slices.SortStableFunc(entries, func(a, b IndexEntry) int {
		switch {
		case a.Step > b.Step:
			return -1
		case a.Step < b.Step:
			return 1
		}
		return 0
	})
	page.Entries = entries

	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("render %s: %w", IndexFile, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, IndexFile), func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
}

// formatFigure prints a figure with four decimals, or "n/a" for NaN.
func formatFigure(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// indexTemplate is parsed once, and html/template escapes every value by its context.
var indexTemplate = template.Must(template.New(IndexFile).Funcs(template.FuncMap{
	"figure": formatFigure,
	"time":   formatTime,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CycleGAN run {{.Run}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
img { image-rendering: pixelated; max-width: 100%; }
</style>
</head>
<body>
<h1>CycleGAN run {{.Run}}</h1>
<p>Baselines on the test set: paired L1 |a − b| {{figure .L1Baseline}}, SWD(testA, testB) {{figure .SWDBaseline}}.
Lower is better for every figure. Samples show real | fake | reconstructed for A→B→A (left) and B→A→B (right).</p>
<p><a href="loss.png">Loss curves</a> (redrawn by the trainer at each checkpoint).</p>
<table>
<thead>
<tr><th>step</th><th>epoch</th><th>evaluated (UTC)</th><th>L1 A→B</th><th>L1 B→A</th><th>cycle L1 A</th><th>cycle L1 B</th><th>SWD A→B</th><th>SWD B→A</th><th>samples</th></tr>
</thead>
<tbody>
{{- range .Entries}}{{$step := .Step}}
<tr id="step-{{.Step}}">
<td>{{.Step}}</td><td>{{.Epoch}}</td><td>{{time .EvaluatedAt}}</td>
<td>{{figure .Figures.L1AB}}</td><td>{{figure .Figures.L1BA}}</td>
<td>{{figure .Figures.CycleL1AB}}</td><td>{{figure .Figures.CycleL1BA}}</td>
<td>{{figure .Figures.SWDAB}}</td><td>{{figure .Figures.SWDBA}}</td>
<td>{{range .Samples}}<a href="{{.}}"><img src="{{.}}" alt="samples of step {{$step}}"></a>{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`))

// writeFileAtomic writes name through a temporary file in the same folder and renames it
// into place, so readers see the old or the new content, never a partial file.
func writeFileAtomic(name string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
