package pipeline

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Reasons for a publish retry, the values of the reason label of
// cyclegan_pipeline_publish_retries_total.
const (
	RetryStreamFull   = "stream_full"  // the stream is at its byte or message bound (backpressure)
	RetryDisconnected = "disconnected" // the client is not connected to a server
	RetryTimeout      = "timeout"      // no ack arrived within the attempt timeout
	RetryUnavailable  = "unavailable"  // no responders for the subject, or another transient failure
)

var retryReasons = []string{RetryStreamFull, RetryDisconnected, RetryTimeout, RetryUnavailable}

// Metrics are the Prometheus collectors of publishers and consumers. Every
// series has a run label, and stage and stream labels, so that the stages
// of a one-process run share one registry.
type Metrics struct {
	publishRetries *prometheus.CounterVec // run, stage, stream, reason
	published      *prometheus.CounterVec // run, stage, stream
	acked          *prometheus.CounterVec // run, stage, stream
	nacked         *prometheus.CounterVec // run, stage, stream
	terminated     *prometheus.CounterVec // run, stage, stream
	redelivered    *prometheus.CounterVec // run, stage, stream
	duplicates     *prometheus.CounterVec // run, stage, stream
	pending        *prometheus.GaugeVec   // run, stream, consumer
	ackPending     *prometheus.GaugeVec   // run, stream, consumer
}

// NewMetrics creates the collectors and registers them with reg; a nil reg
// registers nothing. Calling it again with the same registry, as each stage
// of a one-process run does, returns collectors bound to the ones already
// registered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	stageLabels := []string{"run", "stage", "stream"}
	consumerLabels := []string{"run", "stream", "consumer"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, consumerLabels)
	}
	m := &Metrics{
		publishRetries: counter("cyclegan_pipeline_publish_retries_total",
			"Publish attempts repeated, by reason; stream_full counts waits on a full stream (backpressure).",
			append(stageLabels, "reason")),
		published: counter("cyclegan_pipeline_messages_published_total",
			"Publishes acknowledged by the stream, including those it recognized as duplicates of a stored message id.", stageLabels),
		acked: counter("cyclegan_pipeline_messages_acked_total",
			"Messages handled and acknowledged.", stageLabels),
		nacked: counter("cyclegan_pipeline_messages_nacked_total",
			"Messages whose handler failed, negatively acknowledged for a later redelivery.", stageLabels),
		terminated: counter("cyclegan_pipeline_messages_terminated_total",
			"Poison messages terminated, never to be redelivered.", stageLabels),
		redelivered: counter("cyclegan_pipeline_redeliveries_total",
			"Messages received that the server had delivered before.", stageLabels),
		duplicates: counter("cyclegan_pipeline_duplicates_skipped_total",
			"Messages acknowledged without calling the handler because their id was handled before.", stageLabels),
		pending: gauge("cyclegan_pipeline_consumer_pending_messages",
			"Messages in the stream not yet delivered to the consumer."),
		ackPending: gauge("cyclegan_pipeline_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged."),
	}
	if reg == nil {
		return m, nil
	}

	var errs []error
	for _, c := range []**prometheus.CounterVec{&m.publishRetries, &m.published, &m.acked, &m.nacked, &m.terminated, &m.redelivered, &m.duplicates} {
		existing, err := register(reg, *c)
		errs = append(errs, err)
		*c = existing
	}
	for _, g := range []**prometheus.GaugeVec{&m.pending, &m.ackPending} {
		existing, err := register(reg, *g)
		errs = append(errs, err)
		*g = existing
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
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
	return c, fmt.Errorf("register metrics: %w", err)
}

// RegisterRuntimeCollectors registers the Go runtime and process collectors
// with reg, once: a second call finds them registered and succeeds.
func RegisterRuntimeCollectors(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if _, err := register(reg, c); err != nil {
			return err
		}
	}
	return nil
}

// initPublisher creates a publisher's series at zero, so that a healthy run
// shows them before the first retry.
func (m *Metrics) initPublisher(run, stage, stream string) {
	m.published.WithLabelValues(run, stage, stream)
	for _, reason := range retryReasons {
		m.publishRetries.WithLabelValues(run, stage, stream, reason)
	}
}

// initConsumer creates a consumer's series at zero.
func (m *Metrics) initConsumer(run, stage, stream, consumer string) {
	for _, c := range []*prometheus.CounterVec{m.acked, m.nacked, m.terminated, m.redelivered, m.duplicates} {
		c.WithLabelValues(run, stage, stream)
	}
	m.pending.WithLabelValues(run, stream, consumer)
	m.ackPending.WithLabelValues(run, stream, consumer)
}
