package pipeline

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHTTPEndpoints(t *testing.T) {
	log, _ := newTestLogger(t)
	srv := startEmbedded(t, EmbeddedOptions{})
	nc, js := connectJS(t, srv.ClientURL(), log)

	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var ready Readiness
	ready.AddConn(nc)
	ready.Require("topology")

	h, err := StartHTTP(HTTPOptions{Addr: "127.0.0.1:0", Registry: reg, Ready: ready.Check, Logger: log})
	if err != nil {
		t.Fatalf("StartHTTP: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	base := "http://" + h.Addr()

	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200", code, body)
	}
	code, body := httpGet(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "topology pending") {
		t.Errorf("/readyz before the topology = %d %q, want 503 naming the topology", code, body)
	}
	if err := Probe(t.Context(), base+"/readyz"); !errors.Is(err, ErrProbeFailed) || !strings.Contains(err.Error(), "503") {
		t.Errorf("Probe of an unready stage = %v, want ErrProbeFailed with status 503", err)
	}

	topo, err := EnsureTopology(t.Context(), js, TopologyConfig{Run: "web"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublisher(t.Context(), js, PublisherOptions{Stream: topo.RawStream, Subject: topo.RawSubject, Run: "web", Stage: "loader", Metrics: metrics}); err != nil {
		t.Fatal(err)
	}
	ready.Done("topology")

	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the topology = %d %q, want 200", code, body)
	}
	if err := Probe(t.Context(), base+"/readyz"); err != nil {
		t.Errorf("Probe of a ready stage = %v", err)
	}

	code, body = httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`cyclegan_pipeline_publish_retries_total{reason="stream_full",run="web",stage="loader",stream="CYCLEGAN_RAW_web"} 0`,
		`cyclegan_pipeline_messages_published_total{run="web",stage="loader",stream="CYCLEGAN_RAW_web"} 0`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Losing the connection makes the stage unready again.
	nc.Close()
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS connection") {
		t.Errorf("/readyz after the connection closed = %d %q, want 503 naming the connection", code, body)
	}
}

func TestHTTPWithoutReadyFunction(t *testing.T) {
	h, err := StartHTTP(HTTPOptions{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Shutdown(context.Background()) }()
	if code, _ := httpGet(t, "http://"+h.Addr()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a ready function = %d, want 503", code)
	}
	// The runtime collectors are registered once; a second server on the
	// same registry must still start.
	reg := prometheus.NewRegistry()
	for range 2 {
		h2, err := StartHTTP(HTTPOptions{Addr: "127.0.0.1:0", Registry: reg})
		if err != nil {
			t.Fatalf("StartHTTP on a registry used before: %v", err)
		}
		_ = h2.Shutdown(context.Background())
	}
}

func TestProbeUnreachable(t *testing.T) {
	h, err := StartHTTP(HTTPOptions{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	addr := h.Addr()
	_ = h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := Probe(ctx, "http://"+addr+"/healthz"); err == nil {
		t.Error("Probe of a stopped server succeeded")
	}
}
