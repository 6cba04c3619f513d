package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyTrainArgs are settings that make a real one-process run take seconds: a small model at
// 32 px crops, few evaluation samples and no fixed metrics port.
func tinyTrainArgs(output string, extra ...string) []string {
	args := []string{"train",
		"--output", output, "--metrics-addr", "127.0.0.1:0",
		"--ngf", "4", "--ndf", "4", "--blocks", "1", "--crop-size", "32",
		"--eval-samples", "2", "--log-every", "2",
	}
	return append(args, extra...)
}

func TestTrainCommandRunsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for real on the bundled dataset")
	}
	output := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), tinyTrainArgs(output, "--steps", "4", "--checkpoint-every", "2"), &stdout, &stderr); code != 0 {
		t.Fatalf("first run exit %d, stderr tail:\n%s", code, tail(stderr.String(), 40))
	}
	runDir := filepath.Join(output, "emoji-google2twitter")
	for _, name := range []string{"latest.safetensors", "index.html", "metrics.jsonl", "samples/step-2.png", "samples/step-4.png"} {
		if _, err := os.Stat(filepath.Join(runDir, name)); err != nil {
			t.Errorf("run output %s: %v", name, err)
		}
	}
	kinds := metricsKinds(t, filepath.Join(runDir, "metrics.jsonl"))
	if kinds["train"] != 2 {
		t.Errorf("metrics.jsonl has %d train records, want 2 (steps 2 and 4)", kinds["train"])
	}
	if kinds["eval"] != 2 {
		t.Errorf("metrics.jsonl has %d eval records, want 2 (checkpoints 2 and 4)", kinds["eval"])
	}

	// The same command with a larger --steps continues the run from its checkpoint.
	stderr.Reset()
	if code := run(context.Background(), tinyTrainArgs(output, "--steps", "6", "--checkpoint-every", "2"), &stdout, &stderr); code != 0 {
		t.Fatalf("second run exit %d, stderr tail:\n%s", code, tail(stderr.String(), 40))
	}
	if !strings.Contains(stderr.String(), "resumed from checkpoint") {
		t.Errorf("second run did not log a resume; stderr tail:\n%s", tail(stderr.String(), 20))
	}
	if !strings.Contains(stderr.String(), "step=6") {
		t.Errorf("second run did not reach step 6")
	}
	if _, err := os.Stat(filepath.Join(runDir, "samples", "step-6.png")); err != nil {
		t.Errorf("second run's sample grid: %v", err)
	}

	// Rerun with the same --steps: nothing to train, and the summary names the run's step.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), tinyTrainArgs(output, "--steps", "6", "--checkpoint-every", "2"), &stdout, &stderr); code != 0 {
		t.Fatalf("third run exit %d, stderr tail:\n%s", code, tail(stderr.String(), 40))
	}
	if !strings.Contains(stdout.String(), "finished at step 6.") {
		t.Errorf("third run's summary %q, want it to say step 6", stdout.String())
	}
	if !strings.Contains(stderr.String(), "already at or past --steps") {
		t.Errorf("third run did not warn that --steps is reached; stderr tail:\n%s", tail(stderr.String(), 20))
	}
}

func TestTrainCommandRepeatsWithSameSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for real on the bundled dataset")
	}
	// The pair order once depended on a race that changed about one run in four, so
	// three runs give a return of that race several chances to show.
	var first []string
	for i := range 3 {
		output := t.TempDir()
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tinyTrainArgs(output, "--steps", "2", "--log-every", "1", "--checkpoint-every", "100"), &stdout, &stderr); code != 0 {
			t.Fatalf("run %d exit %d, stderr tail:\n%s", i, code, tail(stderr.String(), 40))
		}
		losses := trainLosses(t, filepath.Join(output, "emoji-google2twitter", "metrics.jsonl"))
		if len(losses) != 2 {
			t.Fatalf("run %d logged %d steps, want 2", i, len(losses))
		}
		if i == 0 {
			first = losses
			continue
		}
		for step := range losses {
			if losses[step] != first[step] {
				t.Errorf("run %d step %d losses %s, first run %s", i, step+1, losses[step], first[step])
			}
		}
	}
}

// trainLosses returns the losses of each train record in a metrics.jsonl, as JSON text.
func trainLosses(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var record struct {
			Kind   string          `json:"kind"`
			Losses json.RawMessage `json:"losses"`
		}
		if err := json.Unmarshal(line, &record); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", line, err)
		}
		if record.Kind == "train" {
			out = append(out, string(record.Losses))
		}
	}
	return out
}

func TestTrainCommandRejectsBadSettings(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"crop not multiple of 4", tinyTrainArgs(t.TempDir(), "--crop-size", "30", "--steps", "1"), "30"},
		{"load below crop", tinyTrainArgs(t.TempDir(), "--load-size", "20", "--steps", "1"), "--load-size 20"},
		{"missing dataset", tinyTrainArgs(t.TempDir(), "--dataset", "/nonexistent/dataset", "--steps", "1"), "/nonexistent/dataset"},
		{"unknown preset", tinyTrainArgs(t.TempDir(), "--preset", "huge"), "huge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), c.args, &stdout, &stderr); code == 0 {
				t.Fatalf("exit 0, want a failure")
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr does not mention %q:\n%s", c.want, tail(stderr.String(), 10))
			}
		})
	}
}

// metricsKinds counts the records of metrics.jsonl by their kind field.
func metricsKinds(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]int{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var record struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(scanner.Bytes(), &record); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", scanner.Text(), err)
		}
		kinds[record.Kind]++
	}
	return kinds
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
