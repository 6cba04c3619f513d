package evaluator

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocyclegan/cyclegan/messages"
)

func TestReadEvalLinesMixedFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), MetricsFile)
	content := strings.Join([]string{
		`{"kind":"train","step":50,"epoch":0,"lr":0.0002,"losses":{"D_A":0.5}}`,
		`{"kind":"eval","step":100,"epoch":0,"metrics":{"cycle_l1_AB":0.25},"samples":["samples/step-100.png"],"time":"2025-01-02T03:04:05Z"}`,
		``,
		`{"kind":"train","step":150,`, // cut short by a crash
		`{"kind":"eval","step":200,"epoch":1,"metrics":{"swd_AB":1.5},"samples":[],"time":"2025-01-02T04:04:05Z"}`,
	}, "\n") // no newline after the last line
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	lines, invalid, err := ReadEvalLines(name)
	if err != nil {
		t.Fatalf("ReadEvalLines: %v", err)
	}
	if invalid != 1 {
		t.Errorf("invalid lines = %d, want 1", invalid)
	}
	if len(lines) != 2 {
		t.Fatalf("eval lines = %+v, want 2", lines)
	}
	if lines[0].Step != 100 || lines[0].Metrics[messages.MetricCycleL1AB] != 0.25 || lines[0].Samples[0] != "samples/step-100.png" {
		t.Errorf("first eval line = %+v", lines[0])
	}
	if lines[1].Step != 200 || lines[1].Epoch != 1 || !lines[1].Time.Equal(time.Date(2025, 1, 2, 4, 4, 5, 0, time.UTC)) {
		t.Errorf("second eval line = %+v", lines[1])
	}
}

func TestReadEvalLinesMissingFile(t *testing.T) {
	lines, invalid, err := ReadEvalLines(filepath.Join(t.TempDir(), "none", MetricsFile))
	if err != nil || len(lines) != 0 || invalid != 0 {
		t.Errorf("ReadEvalLines of a missing file = %v, %d, %v; want no lines and no error", lines, invalid, err)
	}
}

func TestAppendEvalLineRoundTrip(t *testing.T) {
	name := filepath.Join(t.TempDir(), MetricsFile)
	train := `{"kind":"train","step":1}` + "\n"
	if err := os.WriteFile(name, []byte(train), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 7, 8, 9, 10, 123_000_000, time.UTC)
	line := EvalLine{Step: 7, Epoch: 2, Metrics: map[string]float64{messages.MetricSWDAB: 0.5}, Samples: []string{"samples/step-7.png"}, Time: at}
	if err := AppendEvalLine(name, line); err != nil {
		t.Fatalf("AppendEvalLine: %v", err)
	}

	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), train) || !strings.HasSuffix(string(data), "\n") || strings.Count(string(data), "\n") != 2 {
		t.Errorf("file after append:\n%s", data)
	}
	if !strings.Contains(string(data), `"kind":"eval"`) {
		t.Errorf("appended line has no kind eval:\n%s", data)
	}
	lines, invalid, err := ReadEvalLines(name)
	if err != nil || invalid != 0 || len(lines) != 1 {
		t.Fatalf("ReadEvalLines = %v, %d, %v", lines, invalid, err)
	}
	got := lines[0]
	if got.Step != 7 || got.Epoch != 2 || got.Metrics[messages.MetricSWDAB] != 0.5 || !got.Time.Equal(at) || got.Samples[0] != "samples/step-7.png" {
		t.Errorf("read back %+v, want %+v", got, line)
	}
}

func TestMetricsOfDropsUncomputed(t *testing.T) {
	f := Figures{L1AB: math.NaN(), L1BA: math.NaN(), CycleL1AB: 0.1, CycleL1BA: 0.2, SWDAB: 1, SWDBA: 2}
	m := MetricsOf(f, math.NaN(), 3)
	want := map[string]float64{
		messages.MetricCycleL1AB: 0.1, messages.MetricCycleL1BA: 0.2,
		messages.MetricSWDAB: 1, messages.MetricSWDBA: 2, messages.MetricSWDBaseline: 3,
	}
	if len(m) != len(want) {
		t.Errorf("MetricsOf = %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// The report encoder accepts the paired L1 metrics absent together.
	r := messages.EvalReport{Run: "r", Step: 1, Metrics: m, Created: time.Now().UTC()}
	if _, err := messages.EncodeEvalReport(&r); err != nil {
		t.Errorf("EncodeEvalReport: %v", err)
	}

	back := FiguresOf(m)
	if !math.IsNaN(back.L1AB) || !math.IsNaN(back.L1BA) || back.SWDBA != 2 || back.CycleL1AB != 0.1 {
		t.Errorf("FiguresOf(MetricsOf(f)) = %+v, want %+v", back, f)
	}
}
