package monitoring

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var (
	// ErrInvalidRun is returned for a run id outside [A-Za-z0-9_-]{1,32}.
	ErrInvalidRun = errors.New("invalid run id")

	// ErrInvalidInterval is returned for an interval that is not a positive whole number of
	// milliseconds, the resolution of PromQL durations.
	ErrInvalidInterval = errors.New("invalid interval")

	// ErrUnknownVariable is returned when a dashboard query uses a variable that [Queries] cannot
	// replace.
	ErrUnknownVariable = errors.New("unknown dashboard variable")

	// ErrMissingRunMatcher is returned by [CheckRunMatcher] for a selector that does not restrict
	// the run label to the run.
	ErrMissingRunMatcher = errors.New("selector without a matcher for the run")
)

// runPattern is the run id syntax of the pipeline. It admits no quote or backslash, so a run id
// can be pasted into a PromQL string literal as it is.
var runPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// variablePattern matches Grafana's $name and ${name} variable syntax.
var variablePattern = regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}`)

// Query is one PromQL expression of a dashboard panel or an alert rule, ready to send to
// Prometheus.
type Query struct {
	// Source names where the expression comes from, for example `panel "Step time" query B` or
	// `alert CycleGANTrainingStalled`.
	Source string
	// Expr is the expression with the run and the interval filled in.
	Expr string
}

// Queries returns every PromQL expression of the dashboard panels and of the rules, as deployed
// (the embedded dashboard JSON and rule file), made concrete for one run:
//
//   - in panel queries, $run becomes run and $__rate_interval, $__interval and $__range become
//     interval (Grafana's own values depend on the panel width and time range);
//   - rules watch every run, so each selector of a rule expression gets a run="<run>" matcher.
//
// Panel queries come first in layout order, then the rules in file order. The run variable's
// own query (label_values) is a Grafana function, not PromQL, and is not included.
func Queries(run string, interval time.Duration) ([]Query, error) {
	if !runPattern.MatchString(run) {
		return nil, fmt.Errorf("%w: %q (expected 1 to 32 characters from A-Z a-z 0-9 _ -)", ErrInvalidRun, run)
	}
	if interval <= 0 || interval%time.Millisecond != 0 {
		return nil, fmt.Errorf("%w: %s (expected a positive whole number of milliseconds)", ErrInvalidInterval, interval)
	}

	panelQueries, err := dashboardQueries(run, interval)
	if err != nil {
		return nil, err
	}
	ruleQueries, err := alertRuleQueries(run)
	if err != nil {
		return nil, err
	}
	return append(panelQueries, ruleQueries...), nil
}

func dashboardQueries(run string, interval time.Duration) ([]Query, error) {
	decoded, err := DecodeDashboard(dashboardJSON)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DashboardPath, err)
	}

	var queries []Query
	for _, panel := range dashboardPanels(decoded) {
		for _, target := range panel.Targets {
			promQuery, ok := target.(*prometheus.Dataquery)
			if !ok {
				return nil, fmt.Errorf("panel %q: query of type %T, expected a Prometheus query", deref(panel.Title), target)
			}
			source := fmt.Sprintf("panel %q query %s", deref(panel.Title), deref(promQuery.RefId))
			expr, err := expandVariables(promQuery.Expr, run, interval)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			queries = append(queries, Query{Source: source, Expr: expr})
		}
	}
	return queries, nil
}

// dashboardPanels returns the panels of a dashboard in layout order, including the panels kept
// inside collapsed rows.
func dashboardPanels(decoded dashboard.Dashboard) []dashboard.Panel {
	var panels []dashboard.Panel
	for _, item := range decoded.Panels {
		switch {
		case item.Panel != nil:
			panels = append(panels, *item.Panel)
		case item.RowPanel != nil:
			panels = append(panels, item.RowPanel.Panels...)
		}
	}
	return panels
}

// expandVariables replaces the dashboard variables of a panel query.
func expandVariables(expr, run string, interval time.Duration) (string, error) {
	promInterval := model.Duration(interval).String()
	var unknown []string
	expanded := variablePattern.ReplaceAllStringFunc(expr, func(match string) string {
		parts := variablePattern.FindStringSubmatch(match)
		name := parts[1] + parts[2]
		switch name {
		case RunVariable:
			return run
		case "__rate_interval", "__interval", "__range":
			return promInterval
		default:
			unknown = append(unknown, match)
			return match
		}
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("%w %v in %q", ErrUnknownVariable, unknown, expr)
	}
	return expanded, nil
}

func alertRuleQueries(run string) ([]Query, error) {
	rules, err := parseRuleFile(alertRulesYAML)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", AlertRulesPath, err)
	}

	queries := make([]Query, 0, len(rules))
	for _, rule := range rules {
		source := rule.source()
		expr, err := scopeToRun(rule.Expr, run)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		queries = append(queries, Query{Source: source, Expr: expr})
	}
	return queries, nil
}

// scopeToRun adds the matcher run="<run>" to every selector of expr.
func scopeToRun(expr, run string) (string, error) {
	parsed, err := parseExpr(expr)
	if err != nil {
		return "", err
	}
	runMatcher, err := labels.NewMatcher(labels.MatchEqual, RunVariable, run)
	if err != nil {
		return "", fmt.Errorf("build run matcher for %q: %w", run, err)
	}
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if selector, ok := node.(*parser.VectorSelector); ok {
			selector.LabelMatchers = append(selector.LabelMatchers, runMatcher)
		}
		return nil
	})
	return parsed.String(), nil
}

// CheckRunMatcher parses a PromQL expression and checks that every series selector in it has
// the matcher run="<run>" or run=~"<run>", so the expression reads no other run's series. It returns an error wrapping [ErrMissingRunMatcher] that names the first selector
// without one, or the parse error.
func CheckRunMatcher(expr, run string) error {
	parsed, err := parseExpr(expr)
	if err != nil {
		return err
	}

	var selectors []*parser.VectorSelector
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if selector, ok := node.(*parser.VectorSelector); ok {
			selectors = append(selectors, selector)
		}
		return nil
	})
	if len(selectors) == 0 {
		return fmt.Errorf("%w: %q selects no series", ErrMissingRunMatcher, expr)
	}

	for _, selector := range selectors {
		if !hasRunMatcher(selector.LabelMatchers, run) {
			return fmt.Errorf("%w %q: %s in %q", ErrMissingRunMatcher, run, selector, expr)
		}
	}
	return nil
}

func hasRunMatcher(matchers []*labels.Matcher, run string) bool {
	for _, matcher := range matchers {
		if matcher.Name != RunVariable {
			continue
		}
		// run="<run>" or run=~"<run>": a run id contains no regexp metacharacter, so both select
		// exactly that run. A wider pattern such as run=~".+" is not accepted.
		equalOrRegexp := matcher.Type == labels.MatchEqual || matcher.Type == labels.MatchRegexp
		if equalOrRegexp && matcher.Value == run {
			return true
		}
	}
	return false
}

func parseExpr(expr string) (parser.Expr, error) {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse PromQL %q: %w", expr, err)
	}
	return parsed, nil
}
