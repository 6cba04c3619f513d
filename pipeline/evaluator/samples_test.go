package evaluator

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

// distinct returns a colour unique to (block, row, column).
func distinct(block, row, col int) color.NRGBA {
	return color.NRGBA{uint8(40 * (block + 1)), uint8(30 * (row + 1)), uint8(50 * (col + 1)), 255}
}

func sampleRows(block, n, size int) []SampleRow {
	rows := make([]SampleRow, n)
	for r := range rows {
		rows[r] = SampleRow{
			Real:          solid(size, size, distinct(block, r, 0)),
			Fake:          solid(size, size, distinct(block, r, 1)),
			Reconstructed: solid(size, size, distinct(block, r, 2)),
		}
	}
	return rows
}

func TestRenderSampleGridLayout(t *testing.T) {
	ab := sampleRows(0, 2, 8)
	ba := sampleRows(1, 1, 8)
	ba[0].Fake = solid(4, 4, distinct(1, 0, 1)) // smaller than the cell

	grid, err := RenderSampleGrid(ab, ba)
	if err != nil {
		t.Fatal(err)
	}
	// Cells of 8 px, margin 4, gap 16: a block is 3·8 + 2·4 = 32 wide, the grid
	// 4 + 32 + 16 + 32 + 4 = 88 wide and 4 + 2·(8 + 4) = 28 high.
	if want := image.Rect(0, 0, 88, 28); grid.Rect != want {
		t.Fatalf("grid bounds %v, want %v", grid.Rect, want)
	}

	tests := []struct {
		name string
		x, y int
		want color.NRGBA
	}{
		{"A real row 0, top-left", 4, 4, distinct(0, 0, 0)},
		{"A real row 0, bottom-right", 11, 11, distinct(0, 0, 0)},
		{"A fake row 1, top-left", 16, 16, distinct(0, 1, 1)},
		{"A fake row 1, bottom-right", 23, 23, distinct(0, 1, 1)},
		{"A reconstructed row 1", 28, 16, distinct(0, 1, 2)},
		{"B real row 0", 52, 4, distinct(1, 0, 0)},
		{"B fake row 0, small image", 64, 4, distinct(1, 0, 1)},
		{"B fake row 0, beyond small image", 68, 8, gridBackground},
		{"B reconstructed row 0, bottom-right", 83, 11, distinct(1, 0, 2)},
		{"outer margin", 0, 0, gridBackground},
		{"margin between cells", 12, 4, gridBackground},
		{"gap between blocks", 40, 4, gridBackground},
		{"B real row 1, empty", 52, 16, gridBackground},
		{"right margin", 84, 4, gridBackground},
	}
	for _, tt := range tests {
		if got := grid.NRGBAAt(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: pixel (%d, %d) = %v, want %v", tt.name, tt.x, tt.y, got, tt.want)
		}
	}
}

func TestRenderSampleGridRejects(t *testing.T) {
	if _, err := RenderSampleGrid(nil, nil); err == nil {
		t.Errorf("no rows: want an error")
	}
	rows := sampleRows(0, 1, 8)
	rows[0].Fake = nil
	if _, err := RenderSampleGrid(rows, nil); err == nil {
		t.Errorf("missing image: want an error")
	}
}

func TestWriteSampleGrid(t *testing.T) {
	dir := t.TempDir()
	rel, err := WriteSampleGrid(dir, 1200, sampleRows(0, 3, 16), sampleRows(1, 3, 16))
	if err != nil {
		t.Fatal(err)
	}
	if rel != "samples/step-1200.png" {
		t.Errorf("path %q, want samples/step-1200.png", rel)
	}
	f, err := os.Open(filepath.Join(dir, "samples", "step-1200.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode written grid: %v", err)
	}
	// Cell 16: block 3·16 + 8 = 56, width 8 + 112 + 16 = 136, height 4 + 3·20 = 64.
	if want := image.Rect(0, 0, 136, 64); img.Bounds() != want {
		t.Errorf("grid bounds %v, want %v", img.Bounds(), want)
	}
	r, g, b, _ := img.At(4+20, 4+2*20).RGBA() // A fake, row 2
	want := distinct(0, 2, 1)
	if uint8(r>>8) != want.R || uint8(g>>8) != want.G || uint8(b>>8) != want.B {
		t.Errorf("A fake row 2 = (%d, %d, %d), want %v", r>>8, g>>8, b>>8, want)
	}
	assertNoTempFiles(t, filepath.Join(dir, "samples"))
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestWriteIndex(t *testing.T) {
	dir := t.TempDir()
	hostile := `<script>alert("run")</script>&`
	entry := func(step int64, swd float64) IndexEntry {
		return IndexEntry{
			Step:        step,
			Epoch:       int(step / 1483),
			EvaluatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			Figures: Figures{
				L1AB: 0.25, L1BA: math.NaN(), CycleL1AB: 0.05, CycleL1BA: 0.06, SWDAB: swd, SWDBA: 0.09,
			},
			Samples: []string{SamplePath(step)},
		}
	}
	page := IndexPage{
		Run:         hostile,
		L1Baseline:  0.1788,
		SWDBaseline: 0.0883,
		Entries:     []IndexEntry{entry(2000, 0.2), entry(4000, 0.1), entry(1000, 0.3)},
	}
	if err := WriteIndex(dir, page); err != nil {
		t.Fatal(err)
	}
	html := readIndex(t, dir)

	if strings.Contains(html, "<script>") {
		t.Errorf("run name written unescaped")
	}
	if !strings.Contains(html, "&lt;script&gt;alert(&#34;run&#34;)&lt;/script&gt;&amp;") {
		t.Errorf("escaped run name missing")
	}
	for _, want := range []string{
		`href="samples/step-4000.png"`, `src="samples/step-1000.png"`,
		"0.1788", "0.0883", "0.3000", "n/a", "2025-01-02T03:04:05Z",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	assertStepOrder(t, html, 4000, 2000, 1000)

	// A rewrite after the next evaluation replaces the page.
	page.Entries = append(page.Entries, entry(5000, 0.05))
	if err := WriteIndex(dir, page); err != nil {
		t.Fatal(err)
	}
	assertStepOrder(t, readIndex(t, dir), 5000, 4000, 2000, 1000)
	assertNoTempFiles(t, dir)
}

func readIndex(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// assertStepOrder checks that every step has a row and that rows appear in the given order.
func assertStepOrder(t *testing.T, html string, steps ...int64) {
	t.Helper()
	last := -1
	for _, s := range steps {
		i := strings.Index(html, `id="step-`+strconv.FormatInt(s, 10)+`"`)
		if i < 0 {
			t.Errorf("no row for step %d", s)
			continue
		}
		if i < last {
			t.Errorf("step %d listed out of order", s)
		}
		last = i
	}
}
