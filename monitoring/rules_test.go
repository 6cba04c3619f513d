package monitoring

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestAlertRulesMetadata(t *testing.T) {
	rules, err := parseRuleFile(alertRulesYAML)
	if err != nil {
		t.Fatalf("parse %s: %v", AlertRulesPath, err)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", AlertRulesPath)
	}
	for _, rule := range rules {
		if rule.Alert == "" {
			continue // recording rules have no labels or annotations to check
		}
		t.Run(rule.Alert, func(t *testing.T) {
			switch severity := rule.Labels["severity"]; severity {
			case "critical", "warning":
			default:
				t.Errorf("severity = %q, want critical or warning", severity)
			}
			for _, key := range []string{"summary", "description"} {
				text := rule.Annotations[key]
				if text == "" {
					t.Errorf("annotation %s is missing", key)
				}
				// The run is what a reader acts on; promtool's tests check that the label exists.
				if !strings.Contains(text, "{{ $labels.run }}") {
					t.Errorf("annotation %s does not name the run: %q", key, text)
				}
			}
		})
	}
}

func TestParseRuleFileRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"misspelt rule field", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        labels: {severity: warning}\n        annotation: {summary: s}\n"},
		{"misspelt group field", "groups:\n  - name: g\n    interal: 1m\n    rules: []\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseRuleFile([]byte(tt.yaml)); err == nil {
				t.Fatal("parseRuleFile accepted an unknown field")
			}
		})
	}
}

// scrapeConfig is the part of prometheus.yml that lists where each stage is scraped.
type scrapeConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusScrapeTargets(t *testing.T) {
	data, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatalf("read prometheus.yml: %v", err)
	}
	var config scrapeConfig
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatalf("decode prometheus.yml: %v", err)
	}

	if config.Global.ScrapeInterval != "5s" {
		t.Errorf("scrape_interval = %q, want 5s (the datasource's timeInterval)", config.Global.ScrapeInterval)
	}
	if len(config.RuleFiles) != 1 || config.RuleFiles[0] != "rules/*.rules.yml" {
		t.Errorf("rule_files = %q, want [rules/*.rules.yml]", config.RuleFiles)
	}

	// Static targets are compose service names with the stage's metrics port.
	wantStatic := map[string]string{
		"prometheus": "localhost:9090",
		"loader":     "loader:9101",
		"trainer":    "trainer:9103",
		"evaluator":  "evaluator:9104",
	}
	jobs := map[string]bool{}
	for _, job := range config.ScrapeConfigs {
		jobs[job.JobName] = true
		if job.JobName == "augmenter" {
			if len(job.DNSSDConfigs) != 1 {
				t.Fatalf("augmenter job has %d dns_sd_configs, want 1", len(job.DNSSDConfigs))
			}
			dns := job.DNSSDConfigs[0]
			if len(dns.Names) != 1 || dns.Names[0] != "augmenter" || dns.Type != "A" || dns.Port != 9102 {
				t.Errorf("augmenter DNS discovery = %+v, want name augmenter, type A, port 9102", dns)
			}
			continue
		}
		want, ok := wantStatic[job.JobName]
		if !ok {
			t.Errorf("unexpected job %q", job.JobName)
			continue
		}
		if len(job.StaticConfigs) != 1 || len(job.StaticConfigs[0].Targets) != 1 || job.StaticConfigs[0].Targets[0] != want {
			t.Errorf("job %s targets = %+v, want [%s]", job.JobName, job.StaticConfigs, want)
		}
	}
	for _, job := range []string{"prometheus", "loader", "augmenter", "trainer", "evaluator"} {
		if !jobs[job] {
			t.Errorf("no scrape job %q", job)
		}
	}
}
