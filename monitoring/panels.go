package monitoring

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Grid sizes in Grafana's units: the grid is 24 columns wide and a height unit is 30 pixels.
const (
	statWidth   = 4
	statHeight  = 4
	graphHeight = 8
	fullWidth   = 24
	alertHeight = 6
)

// panelRow is a titled row of panels whose widths add up to the grid width, so the builder's
// automatic layout starts each row on a new line.
type panelRow struct {
	title  string
	panels []cog.Builder[dashboard.Panel]
}

// target is one Prometheus query of a panel and the legend of the series it returns.
type target struct {
	expr   string
	legend string
}

func dashboardRows() []panelRow {
	return []panelRow{
		{title: "Overview", panels: overviewPanels()},
		{title: "Alerts", panels: []cog.Builder[dashboard.Panel]{alertListPanel()}},
		{title: "Losses", panels: lossPanels()},
		{title: "Training", panels: trainingPanels()},
		{title: "Evaluation", panels: evaluationPanels()},
		{title: "Pipeline", panels: pipelinePanels()},
	}
}

func overviewPanels() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		statPanel("Training step", "Training steps completed by the trainer (cyclegan_train_steps_total).", "none",
			`cyclegan_train_steps_total{run="$run"}`),
		statPanel("Epoch", "Epoch the trainer is in: step × batch size / size of the larger training set.", "none",
			`cyclegan_train_epoch{run="$run"}`),
		statPanel("Last evaluated checkpoint", "Training step of the checkpoint the evaluator scored last.", "none",
			`cyclegan_eval_checkpoint_step{run="$run"}`),
		statPanel("Images per second now", "Training images consumed per second by the trainer.", "none",
			`rate(cyclegan_train_images_total{run="$run"}[$__rate_interval])`),
		statPanel("Waiting for batches now", "Share of wall time the trainer spends waiting for the next batch. Near 100% means the loader and augmenters cannot keep up.", "percentunit",
			`rate(cyclegan_train_wait_seconds_total{run="$run"}[$__rate_interval])`).
			Thresholds(thresholds(0.8, "orange")),
		statPanel("Non-finite steps", "Steps skipped because a loss was NaN or infinite. The trainer stops after 10 in a row.", "none",
			`cyclegan_train_nonfinite_steps_total{run="$run"}`).
			Thresholds(thresholds(1, "red")),
	}
}

// alertListOptions are the options of Grafana's alert list panel, which the SDK has no type for.
// Names and values follow UnifiedAlertListOptions in Grafana's
// public/app/plugins/panel/alertlist/types.ts, where sortOrder 3 is Importance.
type alertListOptions struct {
	ViewMode                 string           `json:"viewMode"`
	GroupMode                string           `json:"groupMode"`
	GroupBy                  []string         `json:"groupBy"`
	MaxItems                 int              `json:"maxItems"`
	SortOrder                int              `json:"sortOrder"`
	DashboardAlerts          bool             `json:"dashboardAlerts"`
	AlertName                string           `json:"alertName"`
	AlertInstanceLabelFilter string           `json:"alertInstanceLabelFilter"`
	ShowInstances            bool             `json:"showInstances"`
	StateFilter              alertStateFilter `json:"stateFilter"`
}

type alertStateFilter struct {
	Firing  bool `json:"firing"`
	Pending bool `json:"pending"`
	NoData  bool `json:"noData"`
	Normal  bool `json:"normal"`
	Error   bool `json:"error"`
}

// alertListLabelFilter limits the alert list to the selected run. Every alert rule keeps the run
// label of the series it fires on.
const alertListLabelFilter = `{run="$run"}`

func alertListPanel() *dashboard.PanelBuilder {
	return dashboard.NewPanelBuilder().
		Type("alertlist").
		Title("Alerts for this run").
		Description("Firing and pending alerts of the Prometheus rules in monitoring/rules whose run label is the selected run. The rules' descriptions say what to do.").
		Span(fullWidth).
		Height(alertHeight).
		Options(alertListOptions{
			ViewMode:                 "list",
			GroupMode:                "default",
			GroupBy:                  []string{},
			MaxItems:                 20,
			SortOrder:                3,
			AlertInstanceLabelFilter: alertListLabelFilter,
			ShowInstances:            true,
			StateFilter:              alertStateFilter{Firing: true, Pending: true, Error: true},
		})
}

func lossPanels() []cog.Builder[dashboard.Panel] {
	const width = fullWidth / 2
	return []cog.Builder[dashboard.Panel]{
		timeSeriesPanel("Generator adversarial losses",
			"LSGAN losses of the generators: G_A translates A to B and is scored by D_A, G_B translates B to A and is scored by D_B. Values of the last step before each scrape.",
			"none", width,
			target{`cyclegan_train_loss{run="$run", name=~"G_A|G_B"}`, "{{name}}"}),
		timeSeriesPanel("Discriminator losses",
			"LSGAN losses of the discriminators on real and pooled generated images. A value that stays near 0 means the discriminator wins outright (collapse).",
			"none", width,
			target{`cyclegan_train_loss{run="$run", name=~"D_A|D_B"}`, "{{name}}"}),
		timeSeriesPanel("Cycle-consistency losses",
			"Weighted L1 between an image and its round trip: cycle_A for A→B→A, cycle_B for B→A→B.",
			"none", width,
			target{`cyclegan_train_loss{run="$run", name=~"cycle_A|cycle_B"}`, "{{name}}"}),
		timeSeriesPanel("Identity losses",
			"Weighted L1 between an image and a generator's output for an image already in its target domain: idt_A for G_A on B images, idt_B for G_B on A images.",
			"none", width,
			target{`cyclegan_train_loss{run="$run", name=~"idt_A|idt_B"}`, "{{name}}"}),
	}
}

func trainingPanels() []cog.Builder[dashboard.Panel] {
	const width = fullWidth / 4
	return []cog.Builder[dashboard.Panel]{
		timeSeriesPanel("Learning rate", "Learning rate of the Adam optimisers; it changes once per epoch.", "none", width,
			target{`cyclegan_train_learning_rate{run="$run"}`, "learning rate"}).
			LineInterpolation(common.LineInterpolationStepAfter),
		timeSeriesPanel("Images per second", "Training images consumed per second by the trainer.", "none", width,
			target{`rate(cyclegan_train_images_total{run="$run"}[$__rate_interval])`, "trainer"}),
		timeSeriesPanel("Step time", "Quantiles of the wall time of one training step.", "s", width,
			target{stepQuantile("0.5"), "p50"},
			target{stepQuantile("0.9"), "p90"},
			target{stepQuantile("0.99"), "p99"}),
		timeSeriesPanel("Waiting for batches", "Share of wall time the trainer spends waiting for the next batch from the train stream.", "percentunit", width,
			target{`rate(cyclegan_train_wait_seconds_total{run="$run"}[$__rate_interval])`, "waiting"}).
			Min(0).
			Max(1),
	}
}

func stepQuantile(quantile string) string {
	return `histogram_quantile(` + quantile + `, sum by (le) (rate(cyclegan_train_step_duration_seconds_bucket{run="$run"}[$__rate_interval])))`
}

func evaluationPanels() []cog.Builder[dashboard.Panel] {
	const width = fullWidth / 3
	// The evaluator sets these gauges once per checkpoint, so the lines are steps.
	return []cog.Builder[dashboard.Panel]{
		timeSeriesPanel("Paired L1 on the test set",
			"Mean absolute pixel difference (pixels in [0,1]) between a generator's output and the paired test image of the other domain. The baseline is the difference between the paired images themselves: a useful generator goes below it.",
			"none", width,
			target{`cyclegan_eval_l1{run="$run"}`, "{{direction}}"},
			target{`cyclegan_eval_l1_baseline{run="$run"}`, "baseline (input unchanged)"}).
			LineInterpolation(common.LineInterpolationStepAfter),
		timeSeriesPanel("Sliced Wasserstein distance",
			"SWD between the generated images and the real test images of the target domain, on 7×7 patches. The baseline is the SWD between test sets A and B.",
			"none", width,
			target{`cyclegan_eval_swd{run="$run"}`, "{{direction}}"},
			target{`cyclegan_eval_swd_baseline{run="$run"}`, "baseline (A vs B)"}).
			LineInterpolation(common.LineInterpolationStepAfter),
		timeSeriesPanel("Cycle L1 on the test set",
			"Mean absolute difference between a test image and its round trip through both generators (pixels in [0,1]).",
			"none", width,
			target{`cyclegan_eval_cycle_l1{run="$run"}`, "{{direction}}"}).
			LineInterpolation(common.LineInterpolationStepAfter),
	}
}

func pipelinePanels() []cog.Builder[dashboard.Panel] {
	const width = fullWidth / 2
	return []cog.Builder[dashboard.Panel]{
		timeSeriesPanel("Stream backlog",
			"Messages per stream not yet delivered to the consumer (pending) and delivered but not yet acknowledged (ack pending). The maximum over the stages that report a consumer.",
			"none", width,
			target{`max by (stream, consumer) (cyclegan_pipeline_consumer_pending_messages{run="$run"})`, "{{stream}} pending ({{consumer}})"},
			target{`max by (stream, consumer) (cyclegan_pipeline_consumer_ack_pending_messages{run="$run"})`, "{{stream}} ack pending ({{consumer}})"}),
		timeSeriesPanel("Pipeline throughput",
			"Pairs published per second by the loader and by all augmenter replicas together, and images decoded per second by the loader per domain.",
			"none", width,
			target{`sum(rate(cyclegan_loader_pairs_total{run="$run"}[$__rate_interval]))`, "loader pairs"},
			target{`sum(rate(cyclegan_augmenter_pairs_total{run="$run"}[$__rate_interval]))`, "augmenter pairs"},
			target{`sum by (domain) (rate(cyclegan_loader_images_total{run="$run"}[$__rate_interval]))`, "loader images {{domain}}"}),
		timeSeriesPanel("Publish retries",
			"Publishes retried per second by stage, stream and reason. stream_full is backpressure: the stream is at its size limit and the stage waits for its consumer.",
			"none", width,
			target{`sum by (stage, stream, reason) (rate(cyclegan_pipeline_publish_retries_total{run="$run"}[$__rate_interval]))`, "{{stage}} → {{stream}}: {{reason}}"}),
		timeSeriesPanel("Loader skips by reason",
			"Input files skipped per second by the loader, by reason: extension, signature, hidden, too_large, corrupt, truncated, symlink.",
			"none", width,
			target{`sum by (reason) (rate(cyclegan_loader_skipped_total{run="$run"}[$__rate_interval]))`, "{{reason}}"}),
	}
}

func timeSeriesPanel(title, description, unit string, width uint32, targets ...target) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasourceRef()).
		Targets(prometheusTargets(targets)).
		Unit(unit).
		Span(width).
		Height(graphHeight).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderNone))
}

func statPanel(title, description, unit, expr string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasourceRef()).
		Targets(prometheusTargets([]target{{expr: expr}})).
		Unit(unit).
		Span(statWidth).
		Height(statHeight).
		GraphMode(common.BigValueGraphModeArea).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

// thresholds colors a value green below limit and in color from limit up.
func thresholds(limit float64, color string) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps([]dashboard.Threshold{
			{Value: nil, Color: "green"},
			{Value: &limit, Color: color},
		})
}

// prometheusTargets turns queries into range queries on the provisioned datasource with the
// reference ids A, B, C, … that Grafana expects to be unique within a panel.
func prometheusTargets(targets []target) []cog.Builder[variants.Dataquery] {
	builders := make([]cog.Builder[variants.Dataquery], 0, len(targets))
	for i, t := range targets {
		query := prometheus.NewDataqueryBuilder().
			Datasource(datasourceRef()).
			RefId(string(rune('A' + i))).
			Expr(t.expr).
			Range()
		if t.legend != "" {
			query = query.LegendFormat(t.legend)
		}
		builders = append(builders, query)
	}
	return builders
}
