// Package e2e holds the end-to-end test of the monitoring set-up. A real Prometheus (from
// Debian's prometheus package) scrapes a short real training run whose loader, two augmenters,
// trainer and evaluator run as separate services, each with its own registry and HTTP server.
// The test lints each stage's /metrics with promtool, then sends every dashboard and alert
// query of package monitoring to that Prometheus. The package has no code outside its tests.
package e2e
