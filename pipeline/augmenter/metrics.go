package augmenter

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for rejecting a raw pair, the values of the reason label of
// cyclegan_augmenter_skipped_total. Each rejected pair is terminated as a poison message.
const (
	ReasonMalformed = "malformed" // the payload does not decode as a pair
	ReasonNotRaw    = "not_raw"   // a train pair on the raw stream
	ReasonTooSmall  = "too_small" // smaller than the crop
	ReasonWrongRun  = "wrong_run" // the pair names another run than the stream's
)

var skipReasons = []string{ReasonMalformed, ReasonNotRaw, ReasonTooSmall, ReasonWrongRun}

// metrics are the augmenter's collectors with the run label already applied.
type metrics struct {
	pairs   prometheus.Counter
	skipped *prometheus.CounterVec // reason; curried with run
}

// newMetrics registers the augmenter's collectors with reg (nil registers nothing) and
// creates every series of run at zero. Collectors that reg holds already, as when
// several augmenters run in one process, are reused.
func newMetrics(reg prometheus.Registerer, run string) (*metrics, error) {
	pairs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_augmenter_pairs_total",
		Help: "Train pairs published, one for each raw pair augmented.",
	}, []string{"run"})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cyclegan_augmenter_skipped_total",
		Help: "Raw pairs rejected as poison messages and terminated, by reason.",
	}, []string{"run", "reason"})

	if reg != nil {
		var errs []error
		var err error
		pairs, err = register(reg, pairs)
		errs = append(errs, err)
		skipped, err = register(reg, skipped)
		errs = append(errs, err)
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}

	m := &metrics{
		pairs:   pairs.WithLabelValues(run),
		skipped: skipped.MustCurryWith(prometheus.Labels{"run": run}),
	}
	for _, reason := range skipReasons {
		m.skipped.WithLabelValues(reason)
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
	return c, fmt.Errorf("register augmenter metrics: %w", err)
}
