package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPOptions configure a stage's HTTP server.
type HTTPOptions struct {
	Addr     string               // host:port; port 0 picks a free one
	Registry *prometheus.Registry // served on /metrics; the Go and process collectors are added to it
	// Ready returns nil when the stage can do its work, and otherwise the
	// reason it cannot. /readyz returns 200, or 503 with that reason. Nil
	// means never ready.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger // nil discards the records
}

// HTTPServer serves /metrics, /healthz and /readyz.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// NewHTTPHandler returns the handler of the three endpoints: /metrics
// (Prometheus text format from reg), /healthz (200 while the process
// serves requests) and /readyz (200 when ready returns nil, else 503).
func NewHTTPHandler(reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) http.Handler {
	if log == nil {
		log = discardLogger()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg, // counts the handler's own errors
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		err := ErrNotReady
		if ready != nil {
			err = ready(r.Context())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// StartHTTP listens on o.Addr and serves in the background until Shutdown.
func StartHTTP(o HTTPOptions) (*HTTPServer, error) {
	if o.Registry == nil {
		return nil, errors.New("start HTTP server: Registry is required")
	}
	if err := RegisterRuntimeCollectors(o.Registry); err != nil {
		return nil, fmt.Errorf("start HTTP server: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = discardLogger()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("start HTTP server on %s: %w", o.Addr, err)
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           NewHTTPHandler(o.Registry, o.Ready, log),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	log.Info("serving metrics and health", "addr", ln.Addr().String())
	return s, nil
}

// Addr returns the address the server listens on.
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting requests and waits for those in progress until
// ctx ends.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down HTTP server on %s: %w", s.Addr(), err)
	}
	return <-s.done
}

// Readiness collects what a stage waits for before /readyz returns 200: NATS
// connections that must be connected, and named conditions that must be
// marked done. The zero value is ready. It is safe for concurrent use.
type Readiness struct {
	mu      sync.Mutex
	conns   []*nats.Conn
	pending []string
}

// AddConn makes readiness depend on nc being connected.
func (r *Readiness) AddConn(nc *nats.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, nc)
}

// Require adds a condition, such as "topology", that stays unmet until Done.
func (r *Readiness) Require(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.pending, name) {
		r.pending = append(r.pending, name)
	}
}

// Done marks a condition met.
func (r *Readiness) Done(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = slices.DeleteFunc(r.pending, func(p string) bool { return p == name })
}

// Check returns nil when every condition is met and every connection is
// connected, and otherwise an error wrapping ErrNotReady that lists what is
// missing. Its signature fits HTTPOptions.Ready.
func (r *Readiness) Check(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing []string
	for _, nc := range r.conns {
		if !nc.IsConnected() {
			missing = append(missing, "NATS connection "+nc.Status().String())
		}
	}
	for _, p := range r.pending {
		missing = append(missing, p+" pending")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrNotReady, strings.Join(missing, ", "))
	}
	return nil
}

// Probe sends GET url and returns nil for a 2xx response, so that a stage
// binary can be its own container health check (the runtime image has no
// curl). Without a deadline in ctx it waits at most 5s. For any other status
// the error wraps ErrProbeFailed and includes the start of the body.
func Probe(ctx context.Context, url string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %w: status %d: %s", url, ErrProbeFailed, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
