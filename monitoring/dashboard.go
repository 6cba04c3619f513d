package monitoring

//go:generate go run ./cmd/gendashboard -o grafana/dashboards/cyclegan-training.json

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// ErrUnknownField is returned by [DecodeDashboard] for a field that the dashboard types do not
// have.
var ErrUnknownField = errors.New("unknown dashboard field")

const (
	// DatasourceUID is the uid of the provisioned Prometheus datasource. Every panel, query and
	// variable of the dashboard refers to it.
	DatasourceUID = "cyclegan-prometheus"

	// DashboardUID is the uid of the training dashboard: Grafana serves it at /d/cyclegan-training.
	DashboardUID = "cyclegan-training"

	// DashboardTitle is the title of the training dashboard.
	DashboardTitle = "CycleGAN training"

	// RunVariable is the dashboard variable that selects the run. Queries use it as $run.
	RunVariable = "run"

	// runVariableQuery lists the run ids of the trainer series in the dashboard's time range.
	runVariableQuery = "label_values(cyclegan_train_steps_total, run)"
)

// Dashboard builds the "CycleGAN training" dashboard. Its panels are laid out in rows of a
// 24-column grid, and panel ids are numbered from 1 in layout order, so the output is
// deterministic and the checked-in JSON can be compared with it.
func Dashboard() (dashboard.Dashboard, error) {
	builder := dashboard.NewDashboardBuilder(DashboardTitle).
		Uid(DashboardUID).
		Description("Losses, throughput, evaluation figures and pipeline health of one CycleGAN training run.").
		Tags([]string{"cyclegan"}).
		Refresh("10s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(runVariable())

	for _, row := range dashboardRows() {
		builder = builder.WithRow(dashboard.NewRowBuilder(row.title))
		for _, panel := range row.panels {
			builder = builder.WithPanel(panel)
		}
	}

	built, err := builder.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("build dashboard %q: %w", DashboardUID, err)
	}
	numberPanels(&built)
	return built, nil
}

// DashboardJSON returns [Dashboard] as indented JSON with a final newline, the exact content of
// the checked-in file at [DashboardPath].
func DashboardJSON() ([]byte, error) {
	built, err := Dashboard()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetIndent("", "  ")
	// Keeps <, > and & as they are, so PromQL comparisons stay readable in the file.
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(built); err != nil {
		return nil, fmt.Errorf("encode dashboard %q: %w", DashboardUID, err)
	}
	return buf.Bytes(), nil
}

// DecodeDashboard decodes dashboard JSON into the SDK's type and rejects any field that the type
// does not have, at every depth: panels, queries, options and field configs. Wrong types and the
// SDK's validation rules are errors too.
func DecodeDashboard(data []byte) (dashboard.Dashboard, error) {
	// The SDK decodes panel options and queries into their plugin's type only after the plugins
	// are registered; unregistered ones stay generic maps.
	plugins.RegisterDefaultPlugins()

	// NOTE: the strict decoder of SDK v0.0.22 reports unknown fields but, when it succeeds, leaves
	// panels, queries and options out of its result (its empty error list is a non-nil error to
	// the callers inside the SDK). So it serves as a check only, and the value comes from the
	// regular decoder.
	var strict dashboard.Dashboard
	if err := nilIfNoBuildErrors(strict.UnmarshalJSONStrict(data)); err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("decode dashboard JSON strictly: %w", err)
	}

	var decoded dashboard.Dashboard
	if err := json.Unmarshal(data, &decoded); err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("decode dashboard JSON: %w", err)
	}
	if err := checkRoundTrip(data, decoded); err != nil {
		return dashboard.Dashboard{}, err
	}
	if err := decoded.Validate(); err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("validate dashboard %q: %w", deref(decoded.Uid), err)
	}
	return decoded, nil
}

// checkRoundTrip encodes decoded again and checks that every field of the original JSON comes
// back with the same value. A field the SDK's types do not know is dropped by decoding, so this
// finds unknown fields where the strict decoder does not look (fieldConfig.defaults, for one).
// Fields that only the encoding has are defaults the SDK fills in, and are accepted.
func checkRoundTrip(original []byte, decoded dashboard.Dashboard) error {
	encoded, err := json.Marshal(decoded)
	if err != nil {
		return fmt.Errorf("encode decoded dashboard: %w", err)
	}
	var want, got any
	if err := json.Unmarshal(original, &want); err != nil {
		return fmt.Errorf("decode dashboard JSON: %w", err)
	}
	if err := json.Unmarshal(encoded, &got); err != nil {
		return fmt.Errorf("decode encoded dashboard: %w", err)
	}
	if path, ok := firstLostValue("$", want, got); !ok {
		return fmt.Errorf("%w: %s is unknown to the dashboard types or changed by decoding", ErrUnknownField, path)
	}
	return nil
}

// firstLostValue reports whether every object key and value of want is present in got, and the
// JSON path of the first one that is not.
func firstLostValue(path string, want, got any) (string, bool) {
	switch want := want.(type) {
	case map[string]any:
		gotMap, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		keys := make([]string, 0, len(want))
		for key := range want {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			gotValue, present := gotMap[key]
			if !present {
				return path + "." + key, false
			}
			if lost, ok := firstLostValue(path+"."+key, want[key], gotValue); !ok {
				return lost, false
			}
		}
		return "", true
	case []any:
		gotSlice, ok := got.([]any)
		if !ok || len(gotSlice) != len(want) {
			return path, false
		}
		for i := range want {
			if lost, ok := firstLostValue(fmt.Sprintf("%s[%d]", path, i), want[i], gotSlice[i]); !ok {
				return lost, false
			}
		}
		return "", true
	default:
		// Numbers, strings, booleans and null compare by value.
		if want != got {
			return path, false
		}
		return "", true
	}
}

// nilIfNoBuildErrors turns an empty cog.BuildErrors into nil. The strict decoders of SDK v0.0.22
// return their error list as an error value even when it is empty, which is a non-nil error.
func nilIfNoBuildErrors(err error) error {
	var buildErrors cog.BuildErrors
	if errors.As(err, &buildErrors) && len(buildErrors) == 0 {
		return nil
	}
	return err
}

// numberPanels gives rows and panels the ids 1, 2, … in layout order. Grafana would assign ids
// itself, but fixed ones keep panel links (viewPanel=N) stable between generations.
func numberPanels(built *dashboard.Dashboard) {
	var id uint32
	for _, item := range built.Panels {
		id++
		switch {
		case item.Panel != nil:
			panelID := id
			item.Panel.Id = &panelID
		case item.RowPanel != nil:
			item.RowPanel.Id = id
		}
	}
}

func runVariable() *dashboard.QueryVariableBuilder {
	query := runVariableQuery
	return dashboard.NewQueryVariableBuilder(RunVariable).
		Label("Run").
		Description("Run id: the value of the run label on every CycleGAN series.").
		Datasource(datasourceRef()).
		Query(dashboard.StringOrMap{String: &query}).
		Definition(runVariableQuery).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

func datasourceRef() common.DataSourceRef {
	datasourceType := "prometheus"
	uid := DatasourceUID
	return common.DataSourceRef{Type: &datasourceType, Uid: &uid}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
