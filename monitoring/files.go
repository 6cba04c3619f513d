package monitoring

import (
	_ "embed"
)

// The files that Grafana and Prometheus load, embedded so that [Queries] reads exactly what is
// deployed. The dashboard JSON is the generated file, which the tests keep equal to [Dashboard].
// Nothing writes to these slices.
var (
	//go:embed rules/cyclegan.rules.yml
	alertRulesYAML []byte

	//go:embed grafana/dashboards/cyclegan-training.json
	dashboardJSON []byte
)

// Paths of the generated and provisioned files, relative to this package's directory.
const (
	DashboardPath   = "grafana/dashboards/cyclegan-training.json"
	AlertRulesPath  = "rules/cyclegan.rules.yml"
	DatasourcesPath = "grafana/provisioning/datasources/prometheus.yml"
)
