package study

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// samplesHeader is samples.csv's header.
var samplesHeader = []string{"variant", "placement", "entries", "rep", "kind", "mbit_s", "tps", "latency_us", "duration_s", "vm_cpu_s"}

// pointsHeader is points.csv's header.
var pointsHeader = []string{"metric", "unit", "variant", "placement", "entries", "n", "median", "min", "max", "ratio", "ratio_min", "ratio_max"}

func ftoa(f float64) string {
	if math.IsNaN(f) {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// WriteSamplesCSV writes every sample, one row each.
func WriteSamplesCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(samplesHeader)
	for _, s := range samples {
		// A column the test does not measure stays empty.
		mbps, tps, lat := ftoa(s.Mbps), "", ""
		if s.Kind == KindRR {
			mbps, tps, lat = "", ftoa(s.TPS), ftoa(s.LatencyUS)
		}
		_ = cw.Write([]string{string(s.Variant), string(s.Placement), strconv.Itoa(s.Entries), strconv.Itoa(s.Rep), s.Kind,
			mbps, tps, lat, ftoa(s.Duration.Seconds()), ftoa(s.CPUSeconds)})
	}
	cw.Flush()
	return cw.Error()
}

// ReadSamplesCSV reads what WriteSamplesCSV wrote.
func ReadSamplesCSV(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(samplesHeader)
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("samples csv: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("samples csv: empty")
	}
	for i, h := range samplesHeader {
		if rows[0][i] != h {
			return nil, fmt.Errorf("samples csv: column %d is %q, want %q", i+1, rows[0][i], h)
		}
	}
	var out []Sample
	for i, row := range rows[1:] {
		line := i + 2
		s := Sample{Variant: Variant(row[0]), Placement: Placement(row[1]), Kind: row[4]}
		var errs [7]error
		s.Entries, errs[0] = strconv.Atoi(row[2])
		s.Rep, errs[1] = strconv.Atoi(row[3])
		s.Mbps, errs[2] = parseFloat(row[5])
		s.TPS, errs[3] = parseFloat(row[6])
		s.LatencyUS, errs[4] = parseFloat(row[7])
		var secs float64
		secs, errs[5] = parseFloat(row[8])
		s.CPUSeconds, errs[6] = parseFloat(row[9])
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("samples csv: line %d: %w", line, err)
			}
		}
		if s.Kind != KindBulk && s.Kind != KindRR {
			return nil, fmt.Errorf("samples csv: line %d: kind %q", line, s.Kind)
		}
		s.Duration = time.Duration(secs * float64(time.Second))
		out = append(out, s)
	}
	return out, nil
}

func parseFloat(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseFloat(s, 64)
}

// WritePointsCSV writes the summary, one row per point.
func WritePointsCSV(w io.Writer, points []Point) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(pointsHeader)
	for _, p := range points {
		_ = cw.Write([]string{string(p.Metric), p.Metric.Unit(), string(p.Variant), string(p.Placement), strconv.Itoa(p.Entries),
			strconv.Itoa(p.N), ftoa(p.Median), ftoa(p.Min), ftoa(p.Max), ftoa(p.Ratio), ftoa(p.RatioMin), ftoa(p.RatioMax)})
	}
	cw.Flush()
	return cw.Error()
}
