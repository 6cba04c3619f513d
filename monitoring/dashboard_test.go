package monitoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"go.yaml.in/yaml/v3"
)

// provisionedDatasources is the part of Grafana's datasource provisioning file that the
// dashboard depends on.
type provisionedDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		UID       string `yaml:"uid"`
		Type      string `yaml:"type"`
		URL       string `yaml:"url"`
		IsDefault bool   `yaml:"isDefault"`
		JSONData  struct {
			TimeInterval string `yaml:"timeInterval"`
		} `yaml:"jsonData"`
	} `yaml:"datasources"`
}

func readDashboardFile(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(DashboardPath)
	if err != nil {
		t.Fatalf("read dashboard: %v", err)
	}
	return data
}

func decodedDashboard(t *testing.T) dashboard.Dashboard {
	t.Helper()
	decoded, err := DecodeDashboard(readDashboardFile(t))
	if err != nil {
		t.Fatalf("decode %s: %v", DashboardPath, err)
	}
	return decoded
}

func TestDashboardFileMatchesGenerated(t *testing.T) {
	generated, err := DashboardJSON()
	if err != nil {
		t.Fatalf("DashboardJSON: %v", err)
	}
	if !bytes.Equal(readDashboardFile(t), generated) {
		t.Fatalf("%s differs from Dashboard(): run `go generate ./monitoring` and commit the file", DashboardPath)
	}
	if !bytes.Equal(dashboardJSON, generated) {
		t.Fatalf("embedded %s differs from Dashboard(): rebuild after `go generate ./monitoring`", DashboardPath)
	}
}

func TestDecodeDashboardStrict(t *testing.T) {
	decoded := decodedDashboard(t)
	if got := deref(decoded.Uid); got != DashboardUID {
		t.Errorf("uid = %q, want %q", got, DashboardUID)
	}
	if got := deref(decoded.Title); got != DashboardTitle {
		t.Errorf("title = %q, want %q", got, DashboardTitle)
	}

	// Each case adds one unknown field at a different depth of the file.
	tests := []struct {
		name   string
		old    string
		broken string
	}{
		{"dashboard field", `"uid": "cyclegan-training",`, `"uid": "cyclegan-training", "colour": "red",`},
		{"panel field", `"title": "Discriminator losses",`, `"title": "Discriminator losses", "subtitle": "x",`},
		{"query field", `"refId": "A"`, `"refId": "A", "exprs": "up"`},
		{"variable field", `"name": "run",`, `"name": "run", "nmae": "run",`},
		{"field config default", `"unit": "percentunit",`, `"unit": "percentunit", "unitt": "s",`},
		{"panel option", `"graphMode": "area",`, `"graphMode": "area", "graphmode": "area",`},
		{"stat reduce option", `"calcs": [`, `"calc": ["last"], "calcs": [`},
	}
	original := string(readDashboardFile(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(original, tt.old) {
				t.Fatalf("dashboard JSON lacks %q", tt.old)
			}
			broken := strings.Replace(original, tt.old, tt.broken, 1)
			_, err := DecodeDashboard([]byte(broken))
			if err == nil {
				t.Fatalf("DecodeDashboard accepted an unknown field (%s)", tt.broken)
			}
			// fieldConfig.defaults is outside the SDK's strict decoder: only the round trip detects it.
			if tt.name == "field config default" && !errors.Is(err, ErrUnknownField) {
				t.Errorf("error = %v, want ErrUnknownField", err)
			}
		})
	}
}

func TestDashboardDatasourceMatchesProvisioning(t *testing.T) {
	data, err := os.ReadFile(DatasourcesPath)
	if err != nil {
		t.Fatalf("read datasource provisioning: %v", err)
	}
	var provisioned provisionedDatasources
	if err := yaml.Unmarshal(data, &provisioned); err != nil {
		t.Fatalf("decode %s: %v", DatasourcesPath, err)
	}
	if len(provisioned.Datasources) != 1 {
		t.Fatalf("%s provisions %d datasources, want 1", DatasourcesPath, len(provisioned.Datasources))
	}
	source := provisioned.Datasources[0]
	if source.UID != DatasourceUID {
		t.Errorf("provisioned uid = %q, want %q", source.UID, DatasourceUID)
	}
	if source.Type != "prometheus" {
		t.Errorf("provisioned type = %q, want prometheus", source.Type)
	}
	if source.URL != "http://prometheus:9090" {
		t.Errorf("provisioned url = %q, want http://prometheus:9090", source.URL)
	}
	if !source.IsDefault {
		t.Error("provisioned datasource is not the default")
	}
	if source.JSONData.TimeInterval != "5s" {
		t.Errorf("timeInterval = %q, want the 5s scrape interval of prometheus.yml", source.JSONData.TimeInterval)
	}

	decoded := decodedDashboard(t)
	checkRef := func(what string, ref *common.DataSourceRef) {
		t.Helper()
		if ref == nil {
			t.Errorf("%s has no datasource", what)
			return
		}
		if got := deref(ref.Uid); got != source.UID {
			t.Errorf("%s datasource uid = %q, want %q", what, got, source.UID)
		}
		if got := deref(ref.Type); got != source.Type {
			t.Errorf("%s datasource type = %q, want %q", what, got, source.Type)
		}
	}
	for _, variable := range decoded.Templating.List {
		checkRef("variable "+variable.Name, variable.Datasource)
	}
	for _, panel := range dashboardPanels(decoded) {
		if panel.Type == "alertlist" {
			continue // reads Grafana's alert state, not a datasource
		}
		checkRef("panel "+deref(panel.Title), panel.Datasource)
		for _, target := range panel.Targets {
			query := target.(*prometheus.Dataquery)
			checkRef("panel "+deref(panel.Title)+" query "+deref(query.RefId), query.Datasource)
		}
	}
}

func TestDashboardRunVariable(t *testing.T) {
	decoded := decodedDashboard(t)
	if len(decoded.Templating.List) != 1 {
		t.Fatalf("dashboard has %d variables, want 1", len(decoded.Templating.List))
	}
	variable := decoded.Templating.List[0]
	if variable.Name != RunVariable {
		t.Errorf("variable name = %q, want %q", variable.Name, RunVariable)
	}
	if variable.Query == nil || deref(variable.Query.String) != runVariableQuery {
		t.Errorf("variable query = %+v, want %q", variable.Query, runVariableQuery)
	}
	if variable.Multi != nil && *variable.Multi {
		t.Error("run variable allows several values, but queries compare run with =")
	}
}

// rangePattern matches the range of a range-vector selector or subquery, as in [5m].
var rangePattern = regexp.MustCompile(`\[[^\]]*\]`)

func TestDashboardQueries(t *testing.T) {
	decoded := decodedDashboard(t)
	lossNames := map[string]bool{"D_A": false, "G_A": false, "cycle_A": false, "idt_A": false, "D_B": false, "G_B": false, "cycle_B": false, "idt_B": false}

	var count int
	for _, panel := range dashboardPanels(decoded) {
		for _, target := range panel.Targets {
			count++
			query := target.(*prometheus.Dataquery)
			where := "panel " + deref(panel.Title) + " query " + deref(query.RefId)
			if !strings.Contains(query.Expr, `run="$run"`) {
				t.Errorf("%s does not filter by run=\"$run\": %s", where, query.Expr)
			}
			for _, window := range rangePattern.FindAllString(query.Expr, -1) {
				if window != "[$__rate_interval]" {
					t.Errorf("%s uses range %s, want [$__rate_interval]: %s", where, window, query.Expr)
				}
			}
			for name := range lossNames {
				if strings.Contains(query.Expr, "cyclegan_train_loss{") && strings.Contains(query.Expr, name) {
					lossNames[name] = true
				}
			}
		}
	}
	if count == 0 {
		t.Fatal("dashboard has no queries")
	}
	for name, shown := range lossNames {
		if !shown {
			t.Errorf("no panel shows loss %s", name)
		}
	}
}

func TestDashboardPanelTitlesAndLayout(t *testing.T) {
	decoded := decodedDashboard(t)
	wantTitles := []string{
		"Generator adversarial losses", "Discriminator losses", "Cycle-consistency losses", "Identity losses",
		"Learning rate", "Images per second", "Step time", "Stream backlog",
		"Paired L1 on the test set", "Sliced Wasserstein distance", "Cycle L1 on the test set",
		"Last evaluated checkpoint", "Epoch", "Non-finite steps", "Publish retries",
		"Loader skips by reason", "Alerts for this run",
	}
	titles := map[string]bool{}
	ids := map[uint32]string{}
	type cell struct{ x, y uint32 }
	occupied := map[cell]string{}

	for _, item := range decoded.Panels {
		var title string
		var id uint32
		var pos *dashboard.GridPos
		switch {
		case item.Panel != nil:
			title, pos = deref(item.Panel.Title), item.Panel.GridPos
			if item.Panel.Id != nil {
				id = *item.Panel.Id
			}
		case item.RowPanel != nil:
			title, id, pos = "row "+deref(item.RowPanel.Title), item.RowPanel.Id, item.RowPanel.GridPos
		}
		titles[title] = true

		if id == 0 {
			t.Errorf("%s has no id", title)
		} else if other, ok := ids[id]; ok {
			t.Errorf("%s and %s share id %d", title, other, id)
		}
		ids[id] = title

		if pos == nil {
			t.Errorf("%s has no grid position", title)
			continue
		}
		if pos.X+pos.W > 24 {
			t.Errorf("%s ends at column %d, past the 24-column grid", title, pos.X+pos.W)
		}
		for x := pos.X; x < pos.X+pos.W; x++ {
			for y := pos.Y; y < pos.Y+pos.H; y++ {
				if other, ok := occupied[cell{x, y}]; ok {
					t.Fatalf("%s overlaps %s at column %d, row %d", title, other, x, y)
				}
				occupied[cell{x, y}] = title
			}
		}
	}
	for _, want := range wantTitles {
		if !titles[want] {
			t.Errorf("dashboard has no panel %q", want)
		}
	}
}

func TestDashboardAlertList(t *testing.T) {
	var found bool
	for _, panel := range dashboardPanels(decodedDashboard(t)) {
		if panel.Type != "alertlist" {
			continue
		}
		found = true

		// The SDK has no alert list type and keeps the options as a map: decode them again
		// strictly into the type the generator uses.
		raw, err := json.Marshal(panel.Options)
		if err != nil {
			t.Fatalf("encode alert list options: %v", err)
		}
		decoder := json.NewDecoder(bytes.NewReader(raw))
		decoder.DisallowUnknownFields()
		var options alertListOptions
		if err := decoder.Decode(&options); err != nil {
			t.Fatalf("decode alert list options %s: %v", raw, err)
		}
		if options.AlertInstanceLabelFilter != `{run="$run"}` {
			t.Errorf("alert list label filter = %q, want {run=\"$run\"}", options.AlertInstanceLabelFilter)
		}
		if !options.StateFilter.Firing || !options.StateFilter.Pending {
			t.Errorf("alert list state filter %+v hides firing or pending alerts", options.StateFilter)
		}
	}
	if !found {
		t.Fatal("dashboard has no alert list panel")
	}
}
