package lossplot

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the chart in pixels: three panels stacked, each Width × Height/3.
const (
	Width  = 960
	Height = 900
)

// dpi is the resolution of the chart. Fonts and line widths are given in points (1/72 inch), so
// they come out 96/72 times as many pixels wide as their point size.
const dpi = 96

// legendWidth is the width of the legend column in pixels, enough for "swd_baseline" and its
// line sample.
const legendWidth = 140

// pixels returns the length of n pixels at dpi.
func pixels(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// curve is one line of a panel: the value called name in each record.
type curve struct {
	name   string
	color  color.Color
	dashes []vg.Length // nil draws a solid line
}

// panel is one plot of the chart.
type panel struct {
	title  string
	yLabel string
	values func(record) map[string]float64
	curves []curve
}

func lossValues(r record) map[string]float64 { return r.Losses }
func evalValues(r record) map[string]float64 { return r.Metrics }

// Curves of domain A are solid and those of domain B dashed, in the same color.
var (
	dashed = []vg.Length{vg.Points(6), vg.Points(3)}
	dotted = []vg.Length{vg.Points(2), vg.Points(2)}
)

// The loss names are those of the reference PyTorch implementation: G_A translates A to B and is
// scored by D_A.
var (
	generatorPanel = panel{
		title:  "Generator losses",
		yLabel: "loss",
		values: lossValues,
		curves: []curve{
			{name: "G_A", color: plotutil.Color(0)}, {name: "G_B", color: plotutil.Color(0), dashes: dashed},
			{name: "cycle_A", color: plotutil.Color(1)}, {name: "cycle_B", color: plotutil.Color(1), dashes: dashed},
			{name: "idt_A", color: plotutil.Color(2)}, {name: "idt_B", color: plotutil.Color(2), dashes: dashed},
		},
	}
	discriminatorPanel = panel{
		title:  "Discriminator losses",
		yLabel: "loss",
		values: lossValues,
		curves: []curve{
			{name: "D_A", color: plotutil.Color(3)}, {name: "D_B", color: plotutil.Color(3), dashes: dashed},
		},
	}
	// The baseline is the distance between the untranslated test images of the two domains, so
	// a generator that helps draws its curve below it.
	swdPanel = panel{
		title:  "Sliced Wasserstein distance on the test set",
		yLabel: "SWD",
		values: evalValues,
		curves: []curve{
			{name: "swd_AB", color: plotutil.Color(4)}, {name: "swd_BA", color: plotutil.Color(4), dashes: dashed},
			{name: "swd_baseline", color: color.Gray{Y: 120}, dashes: dotted},
		},
	}
)

// drawChart returns the PNG bytes of the three panels: generator losses, discriminator losses
// and SWD. A panel without data is drawn with empty axes.
func drawChart(hist history) ([]byte, error) {
	panels := []struct {
		panel   panel
		records []record
	}{
		{generatorPanel, hist.train},
		{discriminatorPanel, hist.train},
		{swdPanel, hist.eval},
	}
	plots := make([][]*plot.Plot, len(panels))
	legends := make([]plot.Legend, len(panels))
	for i, p := range panels {
		built, legend, err := buildPlot(p.panel, p.records)
		if err != nil {
			return nil, fmt.Errorf("panel %q: %w", p.panel.title, err)
		}
		plots[i] = []*plot.Plot{built}
		legends[i] = legend
	}

	shareStepRange(plots)

	img := vgimg.NewWith(
		vgimg.UseWH(pixels(Width), pixels(Height)),
		vgimg.UseDPI(dpi),
		vgimg.UseBackgroundColor(color.White),
	)
	canvas := draw.New(img)
	// The legends go into a column right of the plots, where they cover no curve.
	plotArea := draw.Crop(canvas, 0, -pixels(legendWidth), 0, 0)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: pixels(16), PadTop: pixels(8), PadBottom: pixels(8), PadLeft: pixels(8)}
	aligned := plot.Align(plots, tiles, plotArea)
	for i, row := range plots {
		area := aligned[i][0]
		row[0].Draw(area)
		legendArea := area
		legendArea.Min.X = area.Max.X + pixels(12)
		legendArea.Max.X = canvas.Max.X
		legendArea.Max.Y -= pixels(24) // below the panel's title
		legends[i].Draw(legendArea)
	}

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// shareStepRange gives every plot the step range of all of them, so that one step is at the same
// x position in every panel.
func shareStepRange(plots [][]*plot.Plot) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range plots {
		lo, hi = min(lo, row[0].X.Min), max(hi, row[0].X.Max)
	}
	if lo > hi {
		return // no data at all: each axis keeps its default range
	}
	for _, row := range plots {
		row[0].X.Min, row[0].X.Max = lo, hi
	}
}

func hasPoints(p panel, records []record) bool {
	for _, c := range p.curves {
		if len(series(records, p.values, c.name)) > 0 {
			return true
		}
	}
	return false
}

// buildPlot returns the plot of one panel and its legend.
func buildPlot(p panel, records []record) (*plot.Plot, plot.Legend, error) {
	pl := plot.New()
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	pl.Title.Text = p.title
	if !hasPoints(p, records) {
		pl.Title.Text += " (no records yet)"
	}
	pl.X.Label.Text = "step"
	pl.Y.Label.Text = p.yLabel
	pl.Add(plotter.NewGrid())

	for _, c := range p.curves {
		points := series(records, p.values, c.name)
		xys := make(plotter.XYs, len(points))
		for i, pt := range points {
			xys[i].X, xys[i].Y = pt[0], pt[1]
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, legend, fmt.Errorf("curve %s: %w", c.name, err)
		}
		line.Color = c.color
		line.Width = vg.Points(1.5)
		line.Dashes = c.dashes
		pl.Add(line)
		legend.Add(c.name, line)
	}
	return pl, legend, nil
}
