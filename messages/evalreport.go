package messages

import (
	"slices"
	"sort"
	"time"
)

const (
	// EvalReportVersion is the evaluation report version that this package
	// writes and reads.
	EvalReportVersion = 1
	// MaxEvalReportBytes is the maximum size in bytes of an encoded
	// evaluation report.
	MaxEvalReportBytes = 64 << 10
	// MaxSamples is the maximum number of sample paths in a report.
	MaxSamples = 32
	// MaxSamplePathLength is the maximum length in bytes of one sample path.
	MaxSamplePathLength = 1024
)

// Metric names, the keys of EvalReport.Metrics. All metrics are computed on
// pixels scaled to [0, 1]. AB is the direction A to B (generator G_A), BA
// the direction B to A (generator G_B).
const (
	MetricL1AB        = "l1_AB"        // mean |G_A(a) - b| over test images named alike in testA and testB
	MetricL1BA        = "l1_BA"        // mean |G_B(b) - a| over the same pairs
	MetricL1Baseline  = "l1_baseline"  // mean |a - b| over the same pairs
	MetricCycleL1AB   = "cycle_l1_AB"  // mean |G_B(G_A(a)) - a| over testA
	MetricCycleL1BA   = "cycle_l1_BA"  // mean |G_A(G_B(b)) - b| over testB
	MetricSWDAB       = "swd_AB"       // sliced Wasserstein distance between G_A(testA) and testB
	MetricSWDBA       = "swd_BA"       // sliced Wasserstein distance between G_B(testB) and testA
	MetricSWDBaseline = "swd_baseline" // sliced Wasserstein distance between testA and testB
)

// requiredMetrics must be present in every report.
var requiredMetrics = []string{MetricCycleL1AB, MetricCycleL1BA, MetricSWDAB, MetricSWDBA, MetricSWDBaseline}

// pairedMetrics need test images present under the same name in testA and
// testB, so a report carries all of them or none.
var pairedMetrics = []string{MetricL1AB, MetricL1BA, MetricL1Baseline}

// MetricNames returns every metric name a report may contain, required ones first.
func MetricNames() []string {
	return slices.Concat(requiredMetrics, pairedMetrics)
}

// isL1Metric reports whether a metric is a mean absolute difference of
// pixels in [0, 1], and so lies in [0, 1] itself.
func isL1Metric(name string) bool {
	switch name {
	case MetricL1AB, MetricL1BA, MetricL1Baseline, MetricCycleL1AB, MetricCycleL1BA:
		return true
	}
	return false
}

// EvalReport is the evaluator's result for one checkpoint. Its JSON encoding
// is one compact object with metrics as a nested object:
//
//	{"version":1,"run":"emoji","step":2000,
//	 "metrics":{"cycle_l1_AB":0.08,"cycle_l1_BA":0.09,"l1_AB":0.21,...},
//	 "samples":["out/emoji/samples/step-2000.png"],"created":"2025-01-02T03:04:05Z"}
type EvalReport struct {
	Run  string // run id, [A-Za-z0-9_-]{1,32}
	Step int64  // step of the evaluated checkpoint, 0 or more

	// Metrics maps metric names (the Metric constants) to values. The
	// cycle L1 and SWD metrics are required. The paired L1 metrics (l1_AB,
	// l1_BA, l1_baseline) are all present or all absent, because they exist
	// only when testA and testB share file names. Every value is finite and
	// 0 or more, and L1 values are at most 1.
	Metrics map[string]float64

	// Samples lists the paths of the sample images written for this step,
	// at most 32, each 1 to 1024 bytes of UTF-8 without control characters.
	Samples []string

	Created time.Time // when the evaluation finished, encoded in UTC
}

type evalReportWire struct {
	Version int                `json:"version"`
	Run     string             `json:"run"`
	Step    int64              `json:"step"`
	Metrics map[string]float64 `json:"metrics"`
	Samples []string           `json:"samples"`
	Created string             `json:"created"`
}

var evalReportKeys = []string{"version", "run", "step", "metrics", "samples", "created"}

// Validate returns an error wrapping ErrField for the first field that breaks
// a rule of the evaluation report.
func (r *EvalReport) Validate() error {
	const message = "eval report"
	if err := validateRunID(message, "run", r.Run); err != nil {
		return err
	}
	if err := validateStep(message, r.Step); err != nil {
		return err
	}
	if err := validateMetrics(r.Metrics); err != nil {
		return err
	}
	if len(r.Samples) > MaxSamples {
		return fieldError(message, "samples", len(r.Samples), ErrField, "count must be at most %d", MaxSamples)
	}
	for _, path := range r.Samples {
		if path == "" {
			return fieldError(message, "samples", path, ErrField, "a sample path must not be empty")
		}
		if err := validateText(message, "samples", path, MaxSamplePathLength); err != nil {
			return err
		}
	}
	return validateTime(message, "created", r.Created)
}

func validateMetrics(metrics map[string]float64) error {
	const message = "eval report"
	unknown := make([]string, 0)
	for name := range metrics {
		if !slices.Contains(requiredMetrics, name) && !slices.Contains(pairedMetrics, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fieldError(message, "metrics."+unknown[0], unknown[0], ErrField, "unknown metric")
	}
	for _, name := range requiredMetrics {
		if _, ok := metrics[name]; !ok {
			return fieldError(message, "metrics."+name, "", ErrField, "missing")
		}
	}
	paired := 0
	for _, name := range pairedMetrics {
		if _, ok := metrics[name]; ok {
			paired++
		}
	}
	if paired != 0 && paired != len(pairedMetrics) {
		for _, name := range pairedMetrics {
			if _, ok := metrics[name]; !ok {
				return fieldError(message, "metrics."+name, "", ErrField,
					"missing, the paired metrics %v are all present or all absent", pairedMetrics)
			}
		}
	}
	for _, name := range MetricNames() {
		v, ok := metrics[name]
		if !ok {
			continue
		}
		if err := validateFinite(message, "metrics."+name, v); err != nil {
			return err
		}
		if v < 0 {
			return fieldError(message, "metrics."+name, v, ErrField, "must be 0 or more")
		}
		if isL1Metric(name) && v > 1 {
			return fieldError(message, "metrics."+name, v, ErrField,
				"must be at most 1, the largest mean difference of pixels in [0, 1]")
		}
	}
	return nil
}

// EncodeEvalReport validates the report and returns its compact JSON
// encoding. Metrics are written in key order, and a nil Samples is written as [].
func EncodeEvalReport(r *EvalReport) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	samples := r.Samples
	if samples == nil {
		samples = []string{}
	}
	return marshalJSON("eval report", evalReportWire{
		Version: EvalReportVersion,
		Run:     r.Run,
		Step:    r.Step,
		Metrics: r.Metrics,
		Samples: samples,
		Created: formatTime(r.Created),
	})
}

// DecodeEvalReport decodes and validates an evaluation report. Keys, metric
// names included, must match exactly and appear once, and unknown keys and
// nulls are rejected. Errors wrap ErrTooLarge, ErrMalformed, ErrVersion or ErrField.
// The result's Samples is non-nil and its Created is in UTC.
func DecodeEvalReport(payload []byte) (*EvalReport, error) {
	const message = "eval report"
	if err := checkJSONSize(message, payload, MaxEvalReportBytes); err != nil {
		return nil, err
	}
	obj, err := parseJSONObject(message, "", payload)
	if err != nil {
		return nil, err
	}
	if err := obj.checkVersion(EvalReportVersion); err != nil {
		return nil, err
	}
	if err := obj.checkKeys(evalReportKeys, evalReportKeys); err != nil {
		return nil, err
	}

	var r EvalReport
	if err := obj.decode("run", &r.Run); err != nil {
		return nil, err
	}
	if err := obj.decode("step", &r.Step); err != nil {
		return nil, err
	}
	if r.Metrics, err = decodeMetrics(obj); err != nil {
		return nil, err
	}
	if err := obj.decode("samples", &r.Samples); err != nil {
		return nil, err
	}
	if r.Created, err = obj.decodeTime("created"); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeMetrics decodes the "metrics" object strictly, so a metric named in
// the wrong case or twice is rejected instead of merged.
func decodeMetrics(obj *jsonObject) (map[string]float64, error) {
	raw := obj.fields["metrics"]
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fieldError(obj.message, "metrics", string(raw), ErrField, "must be a JSON object")
	}
	inner, err := parseJSONObject(obj.message, "metrics.", raw)
	if err != nil {
		return nil, err
	}
	if err := inner.checkKeys(MetricNames(), nil); err != nil {
		return nil, err
	}
	metrics := make(map[string]float64, len(inner.fields))
	for _, name := range MetricNames() {
		if _, ok := inner.fields[name]; !ok {
			continue
		}
		var v float64
		if err := inner.decode(name, &v); err != nil {
			return nil, err
		}
		metrics[name] = v
	}
	return metrics, nil
}
