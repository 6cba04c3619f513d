package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/monitoring"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/trainer"
)

const (
	run = "e2e"
	// steps and checkpointEvery make a run of about 45 s with three evaluations of about 10 s
	// each, measured on 2 CPU cores shared with other work (load average about 6).
	steps           = 300
	checkpointEvery = 100
	// runTimeout bounds the whole test, which takes about a minute.
	runTimeout = 5 * time.Minute
	// scrapeWait bounds each wait for Prometheus to scrape: a few 5 s scrape intervals.
	scrapeWait = 30 * time.Second
)

// metricPrefixes are the prefixes of the metrics each scrape job's stage defines, so the lint
// cannot pass on a /metrics that lacks them.
var metricPrefixes = map[string]string{
	"loader":    "cyclegan_loader_",
	"augmenter": "cyclegan_augmenter_",
	"trainer":   "cyclegan_train_",
	"evaluator": "cyclegan_eval_",
}

// TestE2EPrometheusScrapesTrainingRun runs a short training run as five services, scrapes them
// with a real Prometheus configured like monitoring/prometheus.yml, lints their /metrics with
// promtool during the run, and then sends every query of the dashboard and the alert rules to
// Prometheus. With -v it logs one line per query with the number of series it returned.
func TestE2EPrometheusScrapesTrainingRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for about a minute while a real Prometheus scrapes the stages")
	}
	prometheusBinary := lookTool(t, "prometheus")
	promtoolBinary := lookTool(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	dir := t.TempDir()
	log := stageLogger(t, filepath.Join(dir, "stages.log"))

	natsServer, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := natsServer.Shutdown(shutdownCtx); err != nil {
			t.Errorf("shut down the NATS server: %v", err)
		}
	})

	var lastStep, reports atomic.Int64
	firstReport := make(chan struct{})
	var reportOnce sync.Once
	output := filepath.Join(dir, "runs")
	services := newServices(t, ctx, runSettings{
		run:             run,
		natsURL:         natsServer.ClientURL(),
		output:          output,
		steps:           steps,
		checkpointEvery: checkpointEvery,
		log:             log,
		onStep:          func(p trainer.Progress) { lastStep.Store(p.Step) },
		onReport: func(messages.EvalReport) {
			reports.Add(1)
			reportOnce.Do(func() { close(firstReport) })
		},
	})

	promAddr := freeAddr(t)
	targets := map[string][]string{"prometheus": {promAddr}}
	for _, svc := range services {
		targets[svc.job] = append(targets[svc.job], svc.http.Addr())
	}
	prom := startPrometheus(t, ctx, prometheusBinary, filepath.Join(dir, "prometheus"), promAddr, targets)
	prom.waitFor(t, ctx, "every target up", scrapeWait,
		func() string { return "count(up == 1)" },
		func(v float64) bool { return v == float64(len(services)+1) })
	checkReady(t, ctx, services)

	start := time.Now()
	results := runServices(t, ctx, services)
	var ended []stageResult
	// Lint every stage's /metrics once the evaluator has reported, because by then every stage
	// has made its series. A stage that fails before then ends the test.
	waitForReport := true
	for waitForReport {
		select {
		case <-firstReport:
			waitForReport = false
		case r := <-results:
			if r.err != nil {
				t.Fatalf("stage %s failed before the first evaluation: %v", r.name, r.err)
			}
			ended = append(ended, r)
		case <-ctx.Done():
			t.Fatalf("no evaluation report after %s", time.Since(start).Round(time.Second))
		}
	}
	lintMetrics(t, ctx, promtoolBinary, services)

	for len(ended) < len(services) {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("stage %s failed: %v", r.name, r.err)
			}
			ended = append(ended, r)
		case <-ctx.Done():
			t.Fatalf("%d of %d stages still running after %s", len(services)-len(ended), len(services), time.Since(start).Round(time.Second))
		}
	}
	if t.Failed() {
		return
	}
	if got := lastStep.Load(); got != steps {
		t.Fatalf("trainer stopped at step %d, want %d", got, steps)
	}
	if got, want := reports.Load(), int64(steps/checkpointEvery); got != want {
		t.Errorf("evaluator reported %d times, want %d (one per checkpoint)", got, want)
	}
	runEnd := start
	for _, r := range ended {
		runEnd = maxTime(runEnd, r.end)
	}
	t.Logf("training and evaluation took %s", runEnd.Sub(start).Round(time.Second))

	// The stages keep serving their final values. Two scrapes after the last stage ended make
	// sure Prometheus holds the last evaluation.
	prom.waitFor(t, ctx, "two scrapes of every stage after the run", scrapeWait,
		func() string {
			window := max(time.Since(runEnd).Truncate(time.Millisecond), time.Millisecond)
			return fmt.Sprintf(`min(count_over_time(up{job=~"loader|augmenter|trainer|evaluator"}[%s]))`, model.Duration(window))
		},
		func(v float64) bool { return v >= 2 })

	// Rates over the whole run, so that they average over the training steps and not over the
	// idle time after them. Rounded up to whole 15 s, at least 1 min.
	queryTime := time.Now()
	interval := max(time.Minute, queryTime.Sub(start).Truncate(15*time.Second)+15*time.Second)
	checkQueries(t, ctx, prom, queryTime, interval)

	checkLossChart(t, filepath.Join(output, run, trainer.LossPlotFile))
}

// lintMetrics fetches each service's /metrics and fails the test for any problem that
// `promtool check metrics` reports.
func lintMetrics(t *testing.T, ctx context.Context, promtool string, services []*service) {
	t.Helper()
	for _, svc := range services {
		body, err := fetchMetrics(ctx, svc)
		if err != nil {
			t.Errorf("service %s: %v", svc.name, err)
			continue
		}
		if prefix := metricPrefixes[svc.job]; !bytes.Contains(body, []byte("\n"+prefix)) {
			t.Errorf("service %s: /metrics has no %s* metric", svc.name, prefix)
		}
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on %s of %s: %v\n%s", svc.metricsURL(), svc.name, err, out)
			continue
		}
		t.Logf("promtool check metrics: %s: %d bytes, no problem", svc.name, len(body))
	}
}

// checkQueries sends every query of the dashboard and the alert rules to Prometheus at
// queryTime. Each must succeed and each of its selectors must match a series of the run.
// Dashboard panel queries must return data as well, but alert expressions need not, because
// they return nothing for a healthy run. A few panels are checked for their values too.
func checkQueries(t *testing.T, ctx context.Context, prom *prometheusServer, queryTime time.Time, interval time.Duration) {
	t.Helper()
	queries, err := monitoring.Queries(run, interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d queries at %s, interval %s:", len(queries), queryTime.UTC().Format(time.RFC3339), model.Duration(interval))

	selectorSeries := map[string]int{}
	values := map[string]model.Value{}
	for _, q := range queries {
		n, value, err := prom.query(ctx, q.Expr, queryTime)
		if err != nil {
			t.Errorf("%s: %v", q.Source, err)
			continue
		}
		values[q.Source] = value
		t.Logf("%-58s %2d series  %s", q.Source, n, q.Expr)

		selectors := seriesSelectors(t, q.Expr)
		isPanel := strings.HasPrefix(q.Source, "panel ")
		if isPanel && n == 0 && !alertsOnly(selectors) {
			t.Errorf("%s returned no data: %s", q.Source, q.Expr)
		}
		for _, selector := range selectors {
			count, seen := selectorSeries[selector]
			if !seen {
				count, err = countSeries(ctx, prom, selector, queryTime)
				if err != nil {
					t.Errorf("%s: %v", q.Source, err)
					continue
				}
				selectorSeries[selector] = count
			}
			if count == 0 && !alertsOnly([]string{selector}) {
				t.Errorf("%s: selector %s matches no series of the run", q.Source, selector)
			}
		}
	}

	checks := []struct {
		source string
		check  func(float64) bool
		want   string
	}{
		{`panel "Training step" query A`, func(v float64) bool { return v == steps }, fmt.Sprint(steps)},
		{`panel "Last evaluated checkpoint" query A`, func(v float64) bool { return v == steps }, fmt.Sprint(steps)},
		{`panel "Images per second" query A`, func(v float64) bool { return v > 0 }, "above 0"},
		{`panel "Pipeline throughput" query B`, func(v float64) bool { return v > 0 }, "above 0"},
	}
	for _, c := range checks {
		vector, ok := values[c.source].(model.Vector)
		if !ok || len(vector) != 1 {
			t.Errorf("%s returned %v, want one sample", c.source, values[c.source])
			continue
		}
		if v := float64(vector[0].Value); !c.check(v) {
			t.Errorf("%s = %v, want %s", c.source, v, c.want)
		}
	}
}

// seriesSelectors returns the series selectors of a PromQL expression, such as
// cyclegan_train_loss{name=~"D_A|D_B",run="e2e"}, including those inside range selectors.
func seriesSelectors(t *testing.T, expr string) []string {
	t.Helper()
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	var selectors []string
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if selector, ok := node.(*parser.VectorSelector); ok {
			selectors = append(selectors, selector.String())
		}
		return nil
	})
	return selectors
}

// alertsOnly reports whether every selector reads Prometheus's own alert series, which a healthy
// run leaves empty.
func alertsOnly(selectors []string) bool {
	for _, s := range selectors {
		if !strings.HasPrefix(s, "ALERTS{") && !strings.HasPrefix(s, "ALERTS_FOR_STATE{") {
			return false
		}
	}
	return len(selectors) > 0
}

// countSeries returns the number of series that a selector matches at ts.
func countSeries(ctx context.Context, prom *prometheusServer, selector string, ts time.Time) (int, error) {
	n, value, err := prom.query(ctx, "count("+selector+")", ts)
	if err != nil || n == 0 {
		return 0, err
	}
	return int(value.(model.Vector)[0].Value), nil
}

// checkLossChart checks that the trainer wrote the loss chart as a PNG.
func checkLossChart(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("loss chart: %v", err)
		return
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("loss chart %s: %v", path, err)
	}
}

// stageLogger returns a logger that writes the stages' records to path, and prints the end of
// that file when the test fails.
func stageLogger(t *testing.T, path string) *slog.Logger {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if !t.Failed() {
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Logf("stage log: %v", err)
			return
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		t.Logf("last lines of the stage log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
	})
	return pipeline.NewLogger(f, slog.LevelInfo)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
