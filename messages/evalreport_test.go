package messages

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func testEvalReport() *EvalReport {
	return &EvalReport{
		Run:  "emoji",
		Step: 2000,
		Metrics: map[string]float64{
			MetricL1AB:        0.21,
			MetricL1BA:        0.19,
			MetricL1Baseline:  0.3,
			MetricCycleL1AB:   0.08,
			MetricCycleL1BA:   0.09,
			MetricSWDAB:       1.5,
			MetricSWDBA:       1.25,
			MetricSWDBaseline: 2,
		},
		Samples: []string{"out/emoji/samples/step-2000.png"},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// validEvalReportJSON is the encoding of testEvalReport.
const validEvalReportJSON = `{"version":1,"run":"emoji","step":2000,"metrics":{` +
	`"cycle_l1_AB":0.08,"cycle_l1_BA":0.09,"l1_AB":0.21,"l1_BA":0.19,"l1_baseline":0.3,` +
	`"swd_AB":1.5,"swd_BA":1.25,"swd_baseline":2},` +
	`"samples":["out/emoji/samples/step-2000.png"],"created":"2025-01-02T03:04:05Z"}`

func evalReportsEqual(a, b *EvalReport) bool {
	return a.Run == b.Run && a.Step == b.Step && maps.Equal(a.Metrics, b.Metrics) &&
		slices.Equal(a.Samples, b.Samples) && a.Created.Equal(b.Created)
}

func TestEvalReportRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		edit func(r *EvalReport)
	}{
		{"example", func(r *EvalReport) {}},
		{"without paired metrics", func(r *EvalReport) {
			delete(r.Metrics, MetricL1AB)
			delete(r.Metrics, MetricL1BA)
			delete(r.Metrics, MetricL1Baseline)
		}},
		{"extreme values", func(r *EvalReport) {
			r.Metrics[MetricL1AB] = 1
			r.Metrics[MetricL1BA] = 0
			r.Metrics[MetricCycleL1AB] = math.SmallestNonzeroFloat64
			r.Metrics[MetricSWDAB] = math.MaxFloat64
			r.Metrics[MetricSWDBA] = 1.0 / 3
		}},
		{"many samples", func(r *EvalReport) {
			r.Samples = nil
			for i := range MaxSamples {
				r.Samples = append(r.Samples, fmt.Sprintf("/data/out/emoji/samples/step-2000-%02d é \"q\".png", i))
			}
		}},
		{"empty samples", func(r *EvalReport) { r.Samples = []string{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testEvalReport()
			tc.edit(r)
			payload, err := EncodeEvalReport(r)
			if err != nil {
				t.Fatalf("EncodeEvalReport: %v", err)
			}
			got, err := DecodeEvalReport(payload)
			if err != nil {
				t.Fatalf("DecodeEvalReport(%s): %v", payload, err)
			}
			if !evalReportsEqual(got, r) {
				t.Errorf("decoded %+v, want %+v", got, r)
			}
		})
	}
}

func TestEvalReportEncoding(t *testing.T) {
	got, err := EncodeEvalReport(testEvalReport())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != validEvalReportJSON {
		t.Errorf("encoding:\n got %s\nwant %s", got, validEvalReportJSON)
	}

	r := testEvalReport()
	r.Samples = nil
	got, err = EncodeEvalReport(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"samples":[]`) {
		t.Errorf("nil samples encoded as %s, want []", got)
	}
	decoded, err := DecodeEvalReport(got)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Samples == nil {
		t.Error("decoded Samples is nil, want an empty slice")
	}
}

func TestMetricNames(t *testing.T) {
	names := MetricNames()
	if len(names) != 8 {
		t.Errorf("MetricNames returned %d names, want 8: %v", len(names), names)
	}
	names[0] = "changed"
	if MetricNames()[0] == "changed" {
		t.Error("MetricNames returns a shared slice")
	}
}

func TestDecodeEvalReportRejects(t *testing.T) {
	base := validEvalReportJSON
	cases := []struct {
		name    string
		payload func(t *testing.T) string
		want    error
		field   string
	}{
		{"empty", func(t *testing.T) string { return "" }, ErrMalformed, "payload"},
		{"string", func(t *testing.T) string { return `"report"` }, ErrMalformed, "payload"},
		{"trailing data", func(t *testing.T) string { return base + "\n1" }, ErrMalformed, "payload"},
		{"too large", func(t *testing.T) string {
			return replaceOnce(t, base, `"out/`, `"`+strings.Repeat("x", MaxEvalReportBytes)+`/`)
		}, ErrTooLarge, "payload"},
		{"version 0", func(t *testing.T) string { return replaceOnce(t, base, `"version":1`, `"version":0`) }, ErrVersion, "version"},
		{"version 1.5", func(t *testing.T) string { return replaceOnce(t, base, `"version":1`, `"version":1.5`) }, ErrVersion, "version"},
		{"checkpoint payload", func(t *testing.T) string { return validCheckpointJSON }, ErrField, "epoch"},
		{"missing metrics", func(t *testing.T) string {
			start := strings.Index(base, `"metrics"`)
			end := strings.Index(base, `"samples"`)
			return base[:start] + base[end:]
		}, ErrField, "metrics"},
		{"run too long", func(t *testing.T) string {
			return replaceOnce(t, base, `"run":"emoji"`, `"run":"`+strings.Repeat("a", 33)+`"`)
		}, ErrField, "run"},
		{"negative step", func(t *testing.T) string { return replaceOnce(t, base, `"step":2000`, `"step":-2000`) }, ErrField, "step"},
		{"metrics not an object", func(t *testing.T) string {
			return replaceOnce(t, base, `"metrics":{`, `"metrics":[{`) // the array is closed later, still invalid
		}, ErrMalformed, "metrics"},
		{"metrics as number", func(t *testing.T) string {
			start := strings.Index(base, `"metrics"`)
			end := strings.Index(base, `"samples"`)
			return base[:start] + `"metrics":1,` + base[end:]
		}, ErrField, "metrics"},
		{"metrics null", func(t *testing.T) string {
			start := strings.Index(base, `"metrics"`)
			end := strings.Index(base, `"samples"`)
			return base[:start] + `"metrics":null,` + base[end:]
		}, ErrField, "metrics"},
		{"unknown metric", func(t *testing.T) string { return replaceOnce(t, base, `"swd_BA"`, `"fid":3,"swd_BA"`) }, ErrField, "metrics.fid"},
		{"metric in other case", func(t *testing.T) string { return replaceOnce(t, base, `"swd_BA"`, `"SWD_BA"`) }, ErrField, "metrics.SWD_BA"},
		{"duplicate metric", func(t *testing.T) string {
			return replaceOnce(t, base, `"swd_BA":1.25`, `"swd_BA":1.25,"swd_BA":1`)
		}, ErrField, "metrics.swd_BA"},
		{"required metric missing", func(t *testing.T) string { return replaceOnce(t, base, `"swd_BA":1.25,`, "") }, ErrField, "metrics.swd_BA"},
		{"one paired metric missing", func(t *testing.T) string { return replaceOnce(t, base, `"l1_BA":0.19,`, "") }, ErrField, "metrics.l1_BA"},
		{"metric NaN literal", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "NaN") }, ErrMalformed, "metrics"},
		{"metric Infinity literal", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "Infinity") }, ErrMalformed, "metrics"},
		{"metric -Infinity literal", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "-Infinity") }, ErrMalformed, "metrics"},
		{"metric overflows float64", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "1e999") }, ErrField, "metrics.swd_BA"},
		{"metric as string", func(t *testing.T) string { return replaceOnce(t, base, "1.25", `"1.25"`) }, ErrField, "metrics.swd_BA"},
		{"metric null", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "null") }, ErrField, "metrics.swd_BA"},
		{"negative metric", func(t *testing.T) string { return replaceOnce(t, base, "1.25", "-0.5") }, ErrField, "metrics.swd_BA"},
		{"L1 above 1", func(t *testing.T) string { return replaceOnce(t, base, "0.08", "1.01") }, ErrField, "metrics.cycle_l1_AB"},
		{"samples not an array", func(t *testing.T) string {
			return replaceOnce(t, base, `["out/emoji/samples/step-2000.png"]`, `"out/emoji/samples/step-2000.png"`)
		}, ErrField, "samples"},
		{"samples null", func(t *testing.T) string {
			return replaceOnce(t, base, `["out/emoji/samples/step-2000.png"]`, "null")
		}, ErrField, "samples"},
		{"sample null", func(t *testing.T) string { return replaceOnce(t, base, `"out/emoji`, `null,"out/emoji`) }, ErrField, "samples"},
		{"sample empty", func(t *testing.T) string { return replaceOnce(t, base, `["out`, `["","out`) }, ErrField, "samples"},
		{"sample with a newline", func(t *testing.T) string { return replaceOnce(t, base, "samples/step", `samples\nstep`) }, ErrField, "samples"},
		{"too many samples", func(t *testing.T) string {
			paths := strings.Repeat(`"s.png",`, MaxSamples) + `"s.png"`
			return replaceOnce(t, base, `"out/emoji/samples/step-2000.png"`, paths)
		}, ErrField, "samples"},
		{"created not UTC", func(t *testing.T) string { return replaceOnce(t, base, "05Z", "05-07:00") }, ErrField, "created"},
		{"created empty", func(t *testing.T) string { return replaceOnce(t, base, "2025-01-02T03:04:05Z", "") }, ErrField, "created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeEvalReport([]byte(tc.payload(t)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("DecodeEvalReport error = %v, want %v", err, tc.want)
			}
			if r != nil {
				t.Errorf("DecodeEvalReport returned %+v with error %v", r, err)
			}
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			if fieldErr.Field != tc.field {
				t.Errorf("error names field %q, want %q (%v)", fieldErr.Field, tc.field, err)
			}
		})
	}
}

func TestEncodeEvalReportRejects(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(r *EvalReport)
		field string
	}{
		{"invalid run", func(r *EvalReport) { r.Run = "run 1" }, "run"},
		{"negative step", func(r *EvalReport) { r.Step = -1 }, "step"},
		{"nil metrics", func(r *EvalReport) { r.Metrics = nil }, "metrics.cycle_l1_AB"},
		{"NaN metric", func(r *EvalReport) { r.Metrics[MetricSWDAB] = math.NaN() }, "metrics.swd_AB"},
		{"+Inf metric", func(r *EvalReport) { r.Metrics[MetricSWDBaseline] = math.Inf(1) }, "metrics.swd_baseline"},
		{"-Inf metric", func(r *EvalReport) { r.Metrics[MetricL1AB] = math.Inf(-1) }, "metrics.l1_AB"},
		{"negative metric", func(r *EvalReport) { r.Metrics[MetricCycleL1BA] = -0.1 }, "metrics.cycle_l1_BA"},
		{"L1 baseline above 1", func(r *EvalReport) { r.Metrics[MetricL1Baseline] = 2 }, "metrics.l1_baseline"},
		{"unknown metric", func(r *EvalReport) { r.Metrics["psnr"] = 30 }, "metrics.psnr"},
		{"paired metrics incomplete", func(r *EvalReport) { delete(r.Metrics, MetricL1Baseline) }, "metrics.l1_baseline"},
		{"empty sample path", func(r *EvalReport) { r.Samples = []string{""} }, "samples"},
		{"sample path too long", func(r *EvalReport) { r.Samples = []string{strings.Repeat("p", 1025)} }, "samples"},
		{"sample path not UTF-8", func(r *EvalReport) { r.Samples = []string{"a\xffb"} }, "samples"},
		{"too many samples", func(r *EvalReport) { r.Samples = make([]string, MaxSamples+1) }, "samples"},
		{"zero time", func(r *EvalReport) { r.Created = time.Time{} }, "created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testEvalReport()
			tc.edit(r)
			payload, err := EncodeEvalReport(r)
			if !errors.Is(err, ErrField) {
				t.Fatalf("EncodeEvalReport error = %v, want ErrField", err)
			}
			if payload != nil {
				t.Errorf("EncodeEvalReport returned %s with error %v", payload, err)
			}
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			if fieldErr.Field != tc.field {
				t.Errorf("error names field %q, want %q (%v)", fieldErr.Field, tc.field, err)
			}
		})
	}
}
