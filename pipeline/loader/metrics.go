package loader

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// Domain label values of cyclegan_loader_images_total.
const (
	domainA = "A"
	domainB = "B"
)

// metrics are the loader's collectors with the run label already applied.
type metrics struct {
	imagesA, imagesB prometheus.Counter
	pairs            prometheus.Counter
	skipped          *prometheus.CounterVec // reason; curried with run
	cacheBytes       prometheus.Gauge
}

// newMetrics registers the loader's collectors with reg (nil registers nothing) and
// creates every series of run at zero. A collector that reg holds already, as when a
// second loader of a one-process run registers, is reused.
func newMetrics(reg prometheus.Registerer, run string) (*metrics, error) {
	images := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_loader_images_total",
		Help: "Images decoded and resized, by domain (A or B). Images served from the decoded-image cache are not counted again.",
	}, []string{"run", "domain"})
	pairs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_loader_pairs_total",
		Help: "Raw pairs published to the raw stream.",
	}, []string{"run"})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_loader_skipped_total",
		Help: "Input files skipped, by reason, when the dataset was scanned or when an image failed to decode. Each file is counted once per loader start.",
	}, []string{"run", "reason"})
	cacheBytes := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cyclegan_loader_cache_bytes",
		Help: "Bytes of pixel data held in the decoded-image cache.",
	}, []string{"run"})

	if reg != nil {
		var errs []error
		var err error
		images, err = register(reg, images)
		errs = append(errs, err)
		pairs, err = register(reg, pairs)
		errs = append(errs, err)
		skipped, err = register(reg, skipped)
		errs = append(errs, err)
		cacheBytes, err = register(reg, cacheBytes)
		errs = append(errs, err)
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}

	m := &metrics{
		imagesA:    images.WithLabelValues(run, domainA),
		imagesB:    images.WithLabelValues(run, domainB),
		pairs:      pairs.WithLabelValues(run),
		skipped:    skipped.MustCurryWith(prometheus.Labels{"run": run}),
		cacheBytes: cacheBytes.WithLabelValues(run),
	}
	for _, reason := range dataset.AllSkipReasons() {
		m.skipped.WithLabelValues(string(reason))
	}
	return m, nil
}

// register registers c with reg, or returns the equal collector registered before.
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
	return c, fmt.Errorf("register loader metrics: %w", err)
}

func (m *metrics) skip(reason dataset.SkipReason) {
	m.skipped.WithLabelValues(string(reason)).Inc()
}
