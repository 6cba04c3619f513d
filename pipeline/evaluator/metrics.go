package evaluator

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for a failed evaluation, the values of the reason label of
// cyclegan_eval_failures_total.
const (
	FailureAnnouncement  = "announcement"   // the announcement does not decode or names another run
	FailureMissingObject = "missing_object" // the checkpoint was pruned or deleted before it was read; acked
	FailureFetch         = "fetch"          // reading the Object Store failed; retried
	FailureDigest        = "digest"         // size or SHA-256 differs from the announcement
	FailureLoad          = "load"           // the checkpoint does not load as generators
	FailureTranslate     = "translate"      // a generator failed or returned NaN or infinite values
	FailureReport        = "report"         // the figures do not form a valid evaluation report
	FailureOutput        = "output"         // writing samples, index.html or metrics.jsonl failed; retried
)

// FailureReasons lists the values of the reason label, so that every counter starts at 0.
func FailureReasons() []string {
	return []string{FailureAnnouncement, FailureMissingObject, FailureFetch, FailureDigest, FailureLoad, FailureTranslate, FailureReport, FailureOutput}
}

// Directions, the values of the direction label.
const (
	DirectionAtoB = "AtoB"
	DirectionBtoA = "BtoA"
)

// stageMetrics are the evaluator's collectors. The label values of one run are bound at
// construction.
type stageMetrics struct {
	run                     string
	l1, cycleL1, swd        *prometheus.GaugeVec // run, direction
	l1Baseline, swdBaseline prometheus.Gauge
	checkpointStep          prometheus.Gauge
	duration                prometheus.Observer
	checkpoints             prometheus.Counter
	failures                *prometheus.CounterVec // run, reason
}

// newStageMetrics creates the collectors and registers them with reg, or binds to the
// ones a previous evaluator registered there (as a restarted stage in one process does).
// A nil reg registers nothing.
func newStageMetrics(reg prometheus.Registerer, run string) (*stageMetrics, error) {
	runLabel := []string{"run"}
	dirLabels := []string{"run", "direction"}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	l1 := gauge("cyclegan_eval_l1", "Paired L1 of the latest evaluated checkpoint: mean |G(x) − y| over test images with the same name in both domains, pixels in [0, 1].", dirLabels)
	cycleL1 := gauge("cyclegan_eval_cycle_l1", "Cycle L1 of the latest evaluated checkpoint: mean |G_B(G_A(a)) − a| (AtoB) or |G_A(G_B(b)) − b| (BtoA), pixels in [0, 1].", dirLabels)
	swd := gauge("cyclegan_eval_swd", "Sliced Wasserstein distance between the translated test images and the real test images of the target domain, latest evaluated checkpoint.", dirLabels)
	l1Baseline := gauge("cyclegan_eval_l1_baseline", "Paired L1 of doing nothing: mean |a − b| over test images with the same name in both domains.", runLabel)
	swdBaseline := gauge("cyclegan_eval_swd_baseline", "Sliced Wasserstein distance between the real test images of the two domains.", runLabel)
	step := gauge("cyclegan_eval_checkpoint_step", "Training step of the latest evaluated checkpoint.", runLabel)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cyclegan_eval_duration_seconds",
		Help:    "Time to evaluate one checkpoint: fetch, translation of the test set, figures and output files.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 s to about 68 min
	}, runLabel)
	checkpoints := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_eval_checkpoints_total",
		Help: "Checkpoints evaluated.",
	}, runLabel)
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_eval_failures_total",
		Help: "Checkpoint announcements not evaluated, or evaluations retried, by reason.",
	}, []string{"run", "reason"})

	var err error
	if l1, err = registerVec(reg, l1); err != nil {
		return nil, err
	}
	if cycleL1, err = registerVec(reg, cycleL1); err != nil {
		return nil, err
	}
	if swd, err = registerVec(reg, swd); err != nil {
		return nil, err
	}
	if l1Baseline, err = registerVec(reg, l1Baseline); err != nil {
		return nil, err
	}
	if swdBaseline, err = registerVec(reg, swdBaseline); err != nil {
		return nil, err
	}
	if step, err = registerVec(reg, step); err != nil {
		return nil, err
	}
	if duration, err = registerVec(reg, duration); err != nil {
		return nil, err
	}
	if checkpoints, err = registerVec(reg, checkpoints); err != nil {
		return nil, err
	}
	if failures, err = registerVec(reg, failures); err != nil {
		return nil, err
	}

	for _, reason := range FailureReasons() {
		failures.WithLabelValues(run, reason)
	}
	return &stageMetrics{
		l1:             l1,
		cycleL1:        cycleL1,
		swd:            swd,
		l1Baseline:     l1Baseline.WithLabelValues(run),
		swdBaseline:    swdBaseline.WithLabelValues(run),
		checkpointStep: step.WithLabelValues(run),
		duration:       duration.WithLabelValues(run),
		checkpoints:    checkpoints.WithLabelValues(run),
		failures:       failures,
		run:            run,
	}, nil
}

// registerVec registers c with reg and returns it, or returns the collector already
// registered under the same descriptor.
func registerVec[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register evaluator metrics: %w", err)
}

func (m *stageMetrics) fail(reason string) {
	m.failures.WithLabelValues(m.run, reason).Inc()
}
