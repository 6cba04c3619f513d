package monitoring

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestQueriesOnDeployedFiles(t *testing.T) {
	const run = "emoji-64_test"
	queries, err := Queries(run, time.Minute)
	if err != nil {
		t.Fatalf("Queries: %v", err)
	}

	var panelQueries, alertQueries int
	sources := map[string]bool{}
	for _, query := range queries {
		if sources[query.Source] {
			t.Errorf("source %s appears twice", query.Source)
		}
		sources[query.Source] = true

		switch {
		case strings.HasPrefix(query.Source, "panel "):
			panelQueries++
		case strings.HasPrefix(query.Source, "alert "):
			alertQueries++
		default:
			t.Errorf("unexpected source %q", query.Source)
		}
		if strings.Contains(query.Expr, "$") {
			t.Errorf("%s keeps a variable: %s", query.Source, query.Expr)
		}
		// CheckRunMatcher parses the expression, so this also proves it is valid PromQL.
		if err := CheckRunMatcher(query.Expr, run); err != nil {
			t.Errorf("%s: %v", query.Source, err)
		}
	}

	// 6 stat panels with 1 query each and 13 graphs with 22 queries in all.
	if panelQueries != 28 {
		t.Errorf("got %d panel queries, want 28", panelQueries)
	}
	for _, alert := range []string{"CycleGANNonFiniteLoss", "CycleGANDiscriminatorCollapse", "CycleGANTrainingStalled", "CycleGANTrainerStarved", "CycleGANLoaderSkipRateHigh"} {
		if !sources["alert "+alert] {
			t.Errorf("no query for alert %s", alert)
		}
	}
	if alertQueries != 5 {
		t.Errorf("got %d alert queries, want 5", alertQueries)
	}
}

func TestQueriesExpandsIntervals(t *testing.T) {
	queries, err := Queries("r1", 90*time.Second)
	if err != nil {
		t.Fatalf("Queries: %v", err)
	}
	var found bool
	for _, query := range queries {
		if query.Source == `panel "Step time" query A` {
			found = true
			want := `histogram_quantile(0.5, sum by (le) (rate(cyclegan_train_step_duration_seconds_bucket{run="r1"}[1m30s])))`
			if query.Expr != want {
				t.Errorf("step time query = %s, want %s", query.Expr, want)
			}
		}
	}
	if !found {
		t.Fatal(`no query from panel "Step time" query A`)
	}
}

func TestQueriesInvalidArguments(t *testing.T) {
	tests := []struct {
		name     string
		run      string
		interval time.Duration
		want     error
	}{
		{"empty run", "", time.Minute, ErrInvalidRun},
		{"run with dot", "a.b", time.Minute, ErrInvalidRun},
		{"run with quote", `a"b`, time.Minute, ErrInvalidRun},
		{"run of 33 characters", strings.Repeat("r", 33), time.Minute, ErrInvalidRun},
		{"zero interval", "run", 0, ErrInvalidInterval},
		{"negative interval", "run", -time.Second, ErrInvalidInterval},
		{"sub-millisecond interval", "run", 1500 * time.Microsecond, ErrInvalidInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Queries(tt.run, tt.interval)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Queries(%q, %s) error = %v, want %v", tt.run, tt.interval, err, tt.want)
			}
		})
	}
}

func TestCheckRunMatcher(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		wantErr error // nil: valid; errNotPromQL: a parse error
	}{
		{"equal matcher", `cyclegan_train_epoch{run="r1"}`, nil},
		{"regexp matcher", `cyclegan_train_epoch{run=~"r1"}`, nil},
		{"both sides of a binary operation", `rate(a_total{run="r1"}[1m]) / rate(b_total{run="r1"}[1m])`, nil},
		{"inside a subquery", `max_over_time(rate(a_total{run="r1"}[1m])[5m:1m])`, nil},
		{"missing on one side", `rate(a_total{run="r1"}[1m]) / rate(b_total[1m])`, ErrMissingRunMatcher},
		{"other run", `cyclegan_train_epoch{run="r2"}`, ErrMissingRunMatcher},
		{"wide regexp", `cyclegan_train_epoch{run=~".+"}`, ErrMissingRunMatcher},
		{"negative matcher", `cyclegan_train_epoch{run!="r2"}`, ErrMissingRunMatcher},
		{"no selector", `vector(1)`, ErrMissingRunMatcher},
		{"invalid PromQL", `rate(a_total{run="r1"}[1m]`, errNotPromQL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRunMatcher(tt.expr, "r1")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("CheckRunMatcher(%s) = %v, want nil", tt.expr, err)
			case tt.wantErr == errNotPromQL && (err == nil || errors.Is(err, ErrMissingRunMatcher)):
				t.Fatalf("CheckRunMatcher(%s) = %v, want a parse error", tt.expr, err)
			case tt.wantErr == ErrMissingRunMatcher && !errors.Is(err, ErrMissingRunMatcher):
				t.Fatalf("CheckRunMatcher(%s) = %v, want ErrMissingRunMatcher", tt.expr, err)
			}
		})
	}
}

// errNotPromQL marks test cases that expect a PromQL parse error.
var errNotPromQL = errors.New("parse error expected")

func TestExpandVariables(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		want    string
		wantErr error
	}{
		{"run and rate interval", `rate(x{run="$run"}[$__rate_interval])`, `rate(x{run="r1"}[2m])`, nil},
		{"braced run", `x{run="${run}"}`, `x{run="r1"}`, nil},
		{"interval and range", `avg_over_time(x{run="$run"}[$__interval]) + x{run="$run"} offset $__range`, `avg_over_time(x{run="r1"}[2m]) + x{run="r1"} offset 2m`, nil},
		{"longer name with run prefix", `x{run="$runner"}`, "", ErrUnknownVariable},
		{"millisecond variant", `x{run="$run"} / $__interval_ms`, "", ErrUnknownVariable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandVariables(tt.expr, "r1", 2*time.Minute)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("expandVariables(%s) error = %v, want %v", tt.expr, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("expandVariables(%s) = %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestScopeToRun(t *testing.T) {
	got, err := scopeToRun(`increase(a_total[5m]) == 0 and on (run) max by (run) (b{consumer="trainer"}) > 0`, "r1")
	if err != nil {
		t.Fatalf("scopeToRun: %v", err)
	}
	want := `increase(a_total{run="r1"}[5m]) == 0 and on (run) max by (run) (b{consumer="trainer",run="r1"}) > 0`
	if got != want {
		t.Errorf("scopeToRun = %s, want %s", got, want)
	}
	if err := CheckRunMatcher(got, "r1"); err != nil {
		t.Errorf("scoped expression fails the run check: %v", err)
	}
}
