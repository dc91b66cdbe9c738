package study

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot sizes: one tile per placement, side by side.
const (
	plotWidth  = 11 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	plotDPI    = 96
)

// PlotFile is the file name of metric m's plot.
func PlotFile(m Metric) string { return string(m) + ".png" }

// variantStyle gives each variant the same color and glyph in every plot.
func variantStyle(v Variant) (color.Color, draw.GlyphDrawer) {
	i := orderOf(Variants, v)
	return plotutil.DarkColors[i%len(plotutil.DarkColors)], plotutil.Shape(i)
}

// WritePlot draws metric m as the study did: one tile per placement, the
// entry counts on x (evenly spaced, as categories), the ratio to the
// variant's 0-entry median on y, one line per variant with the
// repetitions' spread as error bars, and a dashed line at 1.
func WritePlot(w io.Writer, points []Point, m Metric) error {
	var counts []int
	var placements []Placement
	for _, p := range points {
		if p.Metric != m {
			continue
		}
		if orderOf(counts, p.Entries) == len(counts) {
			counts = append(counts, p.Entries)
		}
		if orderOf(placements, p.Placement) == len(placements) {
			placements = append(placements, p.Placement)
		}
	}
	if len(counts) == 0 {
		return fmt.Errorf("plot %s: no points", m)
	}
	slices.Sort(counts)
	xOf := map[int]float64{}
	var ticks []plot.Tick
	for i, n := range counts {
		xOf[n] = float64(i)
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: strconv.Itoa(n)})
	}
	row := make([]*plot.Plot, 0, len(placements))
	for _, pl := range placements {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %s", m.Title(), pl)
		p.X.Label.Text = "policy entries / FORWARD rules for the destination"
		p.Y.Label.Text = "relative to 0 entries"
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = -0.3, float64(len(counts)-1)+0.3
		p.Legend.Left = true
		p.Legend.Top = m == Latency
		ymax, ymin := 1.2, 0.8
		one, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: 1}, {X: p.X.Max, Y: 1}})
		if err != nil {
			return err
		}
		one.Color = color.Gray{Y: 150}
		one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(one)
		for _, v := range Variants {
			var xys plotter.XYs
			var errs plotter.YErrors
			for _, pt := range points {
				if pt.Metric != m || pt.Variant != v || pt.Placement != pl || math.IsNaN(pt.Ratio) {
					continue
				}
				// Variants sit side by side around their count, so that
				// equal values do not hide each other's error bars.
				dx := 0.08 * float64(orderOf(Variants, v)-1)
				xys = append(xys, plotter.XY{X: xOf[pt.Entries] + dx, Y: pt.Ratio})
				errs = append(errs, struct{ Low, High float64 }{pt.Ratio - pt.RatioMin, pt.RatioMax - pt.Ratio})
				ymax = math.Max(ymax, pt.RatioMax*1.05)
				if pt.RatioMin > 0 {
					ymin = math.Min(ymin, pt.RatioMin*0.9)
				}
			}
			if len(xys) == 0 {
				continue
			}
			c, shape := variantStyle(v)
			line, scatter, err := plotter.NewLinePoints(xys)
			if err != nil {
				return err
			}
			line.Color, scatter.Color, scatter.Shape = c, c, shape
			bars, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{xys, errs})
			if err != nil {
				return err
			}
			bars.Color = c
			p.Add(line, scatter, bars)
			p.Legend.Add(v.Label(), line, scatter)
		}
		p.Y.Min, p.Y.Max = 0, ymax
		if ymax > 5 {
			// Ratios of tens next to ratios near 1: a log scale keeps
			// both readable.
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
			p.Y.Min = ymin
			p.Y.Label.Text += " (log scale)"
		}
		row = append(row, p)
	}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for j, p := range row {
		p.Draw(canvases[0][j])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// WritePlots writes one PNG per metric into dir and returns their paths.
func WritePlots(dir string, points []Point) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range Metrics {
		if !hasMetric(points, m) {
			continue
		}
		path := filepath.Join(dir, PlotFile(m))
		f, err := os.Create(path)
		if err != nil {
			return out, err
		}
		err = WritePlot(f, points, m)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, path)
	}
	return out, nil
}

// hasMetric reports whether points hold metric m.
func hasMetric(points []Point, m Metric) bool {
	return slices.ContainsFunc(points, func(p Point) bool { return p.Metric == m })
}
