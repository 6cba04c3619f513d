package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// monitoringDir is the folder of prometheus.yml and the rules, relative to this package.
const monitoringDir = ".."

// lookTool returns the path of a Prometheus tool or fails the test with how to install it.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH (%v): install it with `apt-get install prometheus` (Debian), which brings prometheus and promtool", name, err)
	}
	return path
}

// freeAddr returns 127.0.0.1:<port> with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return addr
}

// adaptConfig returns monitoring/prometheus.yml with its targets replaced by targets, keyed by
// job name: each job's static_configs or dns_sd_configs become static_configs listing that
// job's addresses. Everything else, including the comments, stays. It fails the test when a
// job of the file has no entry in targets or the other way round, so the test notices a job
// renamed or added.
func adaptConfig(t *testing.T, config []byte, targets map[string][]string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		t.Fatalf("parse prometheus.yml: %v", err)
	}
	scrapeConfigs := mappingValue(doc.Content[0], "scrape_configs")
	if scrapeConfigs == nil || scrapeConfigs.Kind != yaml.SequenceNode {
		t.Fatal("prometheus.yml has no scrape_configs list")
	}

	var jobs []string
	for _, job := range scrapeConfigs.Content {
		nameNode := mappingValue(job, "job_name")
		if nameNode == nil {
			t.Fatal("prometheus.yml has a scrape config without job_name")
		}
		name := nameNode.Value
		jobs = append(jobs, name)
		addrs, ok := targets[name]
		if !ok {
			t.Fatalf("prometheus.yml scrapes job %q, which the test does not run", name)
		}

		var replacement yaml.Node
		if err := replacement.Encode([]map[string][]string{{"targets": addrs}}); err != nil {
			t.Fatal(err)
		}
		replaced := 0
		for i := 0; i+1 < len(job.Content); i += 2 {
			switch job.Content[i].Value {
			case "static_configs", "dns_sd_configs":
				job.Content[i].Value = "static_configs"
				job.Content[i+1] = &replacement
				replaced++
			}
		}
		if replaced != 1 {
			t.Fatalf("job %q has %d static_configs and dns_sd_configs entries, want 1", name, replaced)
		}
	}
	for name := range targets {
		if !slices.Contains(jobs, name) {
			t.Fatalf("the test runs job %q, which prometheus.yml does not scrape (jobs: %v)", name, jobs)
		}
	}

	adapted, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatalf("encode the adapted prometheus.yml: %v", err)
	}
	return adapted
}

// mappingValue returns the value of key in a YAML mapping node, or nil.
func mappingValue(mapping *yaml.Node, key string) *yaml.Node {
	if mapping.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return mapping.Content[i+1]
		}
	}
	return nil
}

// copyRuleFiles copies the files that the rule_files patterns of config match in
// monitoringDir to the same relative paths under dir, where the adapted configuration finds
// them. It returns the copied paths.
func copyRuleFiles(t *testing.T, config []byte, dir string) []string {
	t.Helper()
	var parsed struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(config, &parsed); err != nil {
		t.Fatalf("parse prometheus.yml: %v", err)
	}
	var copied []string
	for _, pattern := range parsed.RuleFiles {
		matches, err := filepath.Glob(filepath.Join(monitoringDir, pattern))
		if err != nil {
			t.Fatalf("rule_files pattern %q: %v", pattern, err)
		}
		if len(matches) == 0 {
			t.Fatalf("rule_files pattern %q matches no file in %s", pattern, monitoringDir)
		}
		for _, src := range matches {
			rel, err := filepath.Rel(monitoringDir, src)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
			copied = append(copied, rel)
		}
	}
	return copied
}

// prometheusServer is a prometheus process that the test started.
type prometheusServer struct {
	addr string
	log  string // path of the process's output
}

// startPrometheus writes the adapted copy of monitoring/prometheus.yml and the rule files into
// dir and starts prometheus on addr with its TSDB in dir. The test's cleanup kills the process.
// targets must hold the prometheus job's own address, addr.
func startPrometheus(t *testing.T, ctx context.Context, binary, dir, addr string, targets map[string][]string) *prometheusServer {
	t.Helper()
	config, err := os.ReadFile(filepath.Join(monitoringDir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, adaptConfig(t, config, targets), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := copyRuleFiles(t, config, dir)
	t.Logf("prometheus.yml adapted in %s, rule files %v", dir, rules)

	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("kill prometheus (pid %d): %v", cmd.Process.Pid, err)
		}
		<-exited
	})

	server := &prometheusServer{addr: addr, log: logPath}
	server.waitReady(t, ctx, exited)
	return server
}

// prometheusStartTimeout bounds the wait for /-/ready after the process started; a fresh TSDB
// is ready in about a second.
const prometheusStartTimeout = 30 * time.Second

func (p *prometheusServer) waitReady(t *testing.T, ctx context.Context, exited <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, prometheusStartTimeout)
	defer cancel()
	url := "http://" + p.addr + "/-/ready"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited before it was ready (%v); its output:\n%s", err, p.logTail())
		case <-ctx.Done():
			t.Fatalf("prometheus not ready at %s after %s; its output:\n%s", url, prometheusStartTimeout, p.logTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of the process's output.
func (p *prometheusServer) logTail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// apiResponse is the envelope of a Prometheus HTTP API response.
type apiResponse struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// query runs an instant query at ts through /api/v1/query and returns the number of series it
// returned (1 for a scalar or string) with the result.
func (p *prometheusServer) query(ctx context.Context, expr string, ts time.Time) (int, model.Value, error) {
	params := url.Values{
		"query": {expr},
		"time":  {strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/api/v1/query?"+params.Encode(), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	var body apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, nil, fmt.Errorf("query %q: decode the response (status %d): %w", expr, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return 0, nil, fmt.Errorf("query %q: %s: %s", expr, body.ErrorType, body.Error)
	}
	if len(body.Warnings) > 0 {
		return 0, nil, fmt.Errorf("query %q: warnings %v", expr, body.Warnings)
	}

	value, n, err := decodeResult(body.Data.ResultType, body.Data.Result)
	if err != nil {
		return 0, nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return n, value, nil
}

// decodeResult decodes the result of a query response and returns it with its number of series
// (1 for a scalar or string).
func decodeResult(resultType string, raw json.RawMessage) (model.Value, int, error) {
	switch resultType {
	case "vector":
		var v model.Vector
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, 0, err
		}
		return v, len(v), nil
	case "matrix":
		var m model.Matrix
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, 0, err
		}
		return m, len(m), nil
	case "scalar":
		var s model.Scalar
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, 0, err
		}
		return &s, 1, nil
	case "string":
		var s model.String
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, 0, err
		}
		return &s, 1, nil
	default:
		return nil, 0, fmt.Errorf("unknown result type %q", resultType)
	}
}

// scalarQuery runs an instant query at ts that must return one sample and returns its value.
func (p *prometheusServer) scalarQuery(ctx context.Context, expr string, ts time.Time) (float64, error) {
	_, value, err := p.query(ctx, expr, ts)
	if err != nil {
		return 0, err
	}
	vector, ok := value.(model.Vector)
	if !ok || len(vector) != 1 {
		return 0, fmt.Errorf("query %q returned %v, want one sample", expr, value)
	}
	return float64(vector[0].Value), nil
}

// waitFor polls the query until cond accepts its value or the timeout passes, and returns the
// last value.
func (p *prometheusServer) waitFor(t *testing.T, ctx context.Context, what string, timeout time.Duration, expr func() string, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q := expr()
		v, err := p.scalarQuery(ctx, q, time.Now())
		if err == nil && cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %s (query %q: value %v, error %v); prometheus output:\n%s", what, timeout, q, v, err, p.logTail())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
