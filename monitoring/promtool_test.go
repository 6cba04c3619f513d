package monitoring

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promtoolTimeout bounds one promtool run, which takes well under a second.
const promtoolTimeout = time.Minute

// promtool returns the path of the promtool binary or fails the test with the install command.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (%v): install it with `apt-get install prometheus` (Debian) or put Prometheus's promtool on PATH", err)
	}
	return path
}

// runPromtool runs promtool in dir and returns its combined output and error.
func runPromtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), promtoolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Dir = dir
	output, err := cmd.CombinedOutput()
	return string(output), err
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, entry os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.IsDir() && strings.HasSuffix(path, "_test.yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("find *_test.yml files: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("no *_test.yml rule test files under monitoring/")
	}
	return files
}

func TestPromtoolChecks(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// wantOutput are substrings promtool prints on success.
		wantOutput []string
	}{
		{
			name: "check config",
			args: []string{"check", "config", "prometheus.yml"},
			// The rule file pattern must resolve next to the config, or promtool checks no rules.
			wantOutput: []string{"SUCCESS", "Checking " + AlertRulesPath, "5 rules found"},
		},
		{
			name:       "check rules",
			args:       []string{"check", "rules", AlertRulesPath},
			wantOutput: []string{"SUCCESS: 5 rules found"},
		},
		{
			name:       "test rules",
			args:       append([]string{"test", "rules"}, ruleTestFiles(t)...),
			wantOutput: []string{"SUCCESS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			output, err := runPromtool(t, ".", tt.args...)
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, output)
			}
			for _, want := range tt.wantOutput {
				if !strings.Contains(output, want) {
					t.Errorf("promtool %s output lacks %q:\n%s", strings.Join(tt.args, " "), want, output)
				}
			}
		})
	}
}

// TestRuleTestsCatchBrokenRules weakens each alert rule in a copy of the rule file and expects
// the promtool unit tests to fail, so they prove both firing and staying silent.
func TestRuleTestsCatchBrokenRules(t *testing.T) {
	rules, err := os.ReadFile(AlertRulesPath)
	if err != nil {
		t.Fatalf("read rules: %v", err)
	}
	ruleTests, err := os.ReadFile("rules/cyclegan_rules_test.yml")
	if err != nil {
		t.Fatalf("read rule tests: %v", err)
	}

	tests := []struct {
		alert       string
		old, broken string
	}{
		// Without the gauge check, NaN losses go unnoticed.
		{"CycleGANNonFiniteLoss", "or\n          cyclegan_train_loss != cyclegan_train_loss\n", ""},
		// A threshold above the LSGAN level fires on the healthy run.
		{"CycleGANDiscriminatorCollapse", "< 0.005", "< 0.3"},
		// Counting an empty train stream as a backlog fires on the finished run.
		{"CycleGANTrainingStalled", "}) > 0\n", "}) >= 0\n"},
		// A low wait threshold fires on the well-fed run.
		{"CycleGANTrainerStarved", "> 0.8", "> 0.1"},
		// A low skip threshold fires on the run that skips 11%.
		{"CycleGANLoaderSkipRateHigh", "> 0.2\n", "> 0.1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.alert, func(t *testing.T) {
			if strings.Count(string(rules), tt.old) != 1 {
				t.Fatalf("rule text %q occurs %d times in %s, want once", tt.old, strings.Count(string(rules), tt.old), AlertRulesPath)
			}
			dir := t.TempDir()
			broken := strings.Replace(string(rules), tt.old, tt.broken, 1)
			if err := os.WriteFile(filepath.Join(dir, "cyclegan.rules.yml"), []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "cyclegan_rules_test.yml"), ruleTests, 0o644); err != nil {
				t.Fatal(err)
			}

			output, err := runPromtool(t, dir, "test", "rules", "cyclegan_rules_test.yml")
			if err == nil {
				t.Fatalf("promtool test rules passed with a broken %s rule:\n%s", tt.alert, output)
			}
			if !strings.Contains(output, "alertname: "+tt.alert) {
				t.Errorf("promtool failed, but not on %s:\n%s", tt.alert, output)
			}
		})
	}
}
