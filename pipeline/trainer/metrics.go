package trainer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/model"
)

// metrics are the trainer's Prometheus collectors, each series labelled
// with the run.
type metrics struct {
	loss          *prometheus.GaugeVec // run, name
	steps         *prometheus.CounterVec
	stepDuration  *prometheus.HistogramVec
	images        *prometheus.CounterVec
	learningRate  *prometheus.GaugeVec
	epoch         *prometheus.GaugeVec
	nonFinite     *prometheus.CounterVec
	waitSeconds   *prometheus.CounterVec
	checkpoints   *prometheus.CounterVec
	checkpointErr *prometheus.CounterVec
}

// stepDurationBuckets span 0.05 s (a tiny model) to 30 s (the reference
// preset on a CPU), in seconds.
var stepDurationBuckets = prometheus.ExponentialBucketsRange(0.05, 30, 12)

// newMetrics creates the collectors, registers them with reg (nil registers
// nothing) and creates run's series at zero. A second call with the same
// registry reuses the registered collectors.
func newMetrics(reg prometheus.Registerer, run string) (*metrics, error) {
	runLabel := []string{"run"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, runLabel)
	}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		loss: gauge("cyclegan_train_loss",
			"Loss of the latest applied training step, by the reference implementation's loss name.", []string{"run", "name"}),
		steps: counter("cyclegan_train_steps_total",
			"Training steps applied (steps skipped for a non-finite loss are not counted)."),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cyclegan_train_step_duration_seconds",
			Help:    "Time of one training step (forward, backward and Adam update), without waiting for the batch.",
			Buckets: stepDurationBuckets,
		}, runLabel),
		images: counter("cyclegan_train_images_total",
			"Training images consumed by applied steps, domains A and B counted separately (2 per pair)."),
		learningRate: gauge("cyclegan_train_learning_rate",
			"Learning rate of the latest applied step.", runLabel),
		epoch: gauge("cyclegan_train_epoch",
			"Epoch of the latest applied step, 0-based: floor(step × batch_size / dataset_size).", runLabel),
		nonFinite: counter("cyclegan_train_nonfinite_steps_total",
			"Training steps skipped because a loss or gradient was NaN or infinite."),
		waitSeconds: counter("cyclegan_train_wait_seconds_total",
			"Time the trainer spent waiting for train pairs to fill a batch, in seconds."),
		checkpoints: counter("cyclegan_train_checkpoints_total",
			"Checkpoints stored in the Object Store and announced."),
		checkpointErr: counter("cyclegan_train_checkpoint_failures_total",
			"Checkpoints that could not be stored, announced or recorded; training went on."),
	}

	if reg != nil {
		var errs []error
		for _, c := range []**prometheus.CounterVec{&m.steps, &m.images, &m.nonFinite, &m.waitSeconds, &m.checkpoints, &m.checkpointErr} {
			existing, err := register(reg, *c)
			errs = append(errs, err)
			*c = existing
		}
		for _, g := range []**prometheus.GaugeVec{&m.loss, &m.learningRate, &m.epoch} {
			existing, err := register(reg, *g)
			errs = append(errs, err)
			*g = existing
		}
		existing, err := register(reg, m.stepDuration)
		errs = append(errs, err)
		m.stepDuration = existing
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}

	for _, name := range model.LossNames {
		m.loss.WithLabelValues(run, name)
	}
	for _, c := range []*prometheus.CounterVec{m.steps, m.images, m.nonFinite, m.waitSeconds, m.checkpoints, m.checkpointErr} {
		c.WithLabelValues(run)
	}
	m.learningRate.WithLabelValues(run)
	m.epoch.WithLabelValues(run)
	m.stepDuration.WithLabelValues(run)
	return m, nil
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register trainer metrics: %w", err)
}
