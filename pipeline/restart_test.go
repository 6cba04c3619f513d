package pipeline

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const natsServerModule = "github.com/nats-io/nats-server/v2"

// natsServerBinary builds nats-server from the module version this test
// binary links, caching it under the user cache directory (or the test's
// temp directory when there is none).
func natsServerBinary(t *testing.T) string {
	t.Helper()
	version := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == natsServerModule {
				version = dep.Version
			}
		}
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "cyclegan-test", "nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if info, err := os.Stat(bin); err == nil && info.Mode()&0o111 != 0 {
		return bin
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Build under a temporary name and rename, so that a concurrent test
	// run never executes a half-written file.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.Command(goTool, "build", "-o", tmp, natsServerModule)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", natsServerModule, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serverProcess is a nats-server child process.
type serverProcess struct {
	t        *testing.T
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *logBuffer
}

func (s *serverProcess) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir, "--server_name", "restart-test")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd)

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	waitFor(s.t, 10*time.Second, "nats-server accepting on "+addr, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// stop sends SIGTERM to the server's PID and waits for it to exit.
func (s *serverProcess) stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("nats-server ignored SIGTERM for 10s and was killed")
	}
}

func TestRestartSeparateServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and restarts a nats-server process")
	}
	serverOutput := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nats-server output:\n%s", serverOutput.String())
		}
	})
	srv := &serverProcess{t: t, bin: natsServerBinary(t), dir: t.TempDir(), port: freePort(t), log: serverOutput}
	srv.start()
	t.Cleanup(srv.stop)
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.port)

	log, _ := newTestLogger(t)
	pubConn, pubJS := connectJS(t, url, log.With("side", "publisher"))
	subConn, subJS := connectJS(t, url, log.With("side", "consumer"))
	topo, err := EnsureTopology(t.Context(), pubJS, TopologyConfig{Run: "restart"}, log)
	if err != nil {
		t.Fatalf("EnsureTopology: %v", err)
	}
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(t.Context(), pubJS, PublisherOptions{
		Stream: topo.RawStream, Subject: topo.RawSubject, Run: "restart", Stage: "loader",
		Metrics: metrics, Logger: log.With("side", "publisher"),
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond, AttemptTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := NewConsumer(t.Context(), subJS, ConsumerOptions{
		Stream: topo.RawStream, Durable: ConsumerAugmenter, Run: "restart", Stage: "augmenter",
		Metrics: metrics, Logger: log.With("side", "consumer"),
		AckWait: 2 * time.Second, PullWait: 500 * time.Millisecond, NakDelay: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	got := newReceivedSet()
	stopConsumer := runConsumer(t, cons, func(ctx context.Context, m *Message) error {
		got.add(m.ID)
		return nil
	})

	const n = 300
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("r-%03d", i)
	}
	var published atomic.Int32
	var pubErr error
	var pubDone sync.WaitGroup
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pubDone.Go(func() {
		for _, id := range want {
			if _, err := pub.Publish(ctx, id, []byte("payload of "+id)); err != nil {
				pubErr = err
				return
			}
			published.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})

	waitFor(t, 10*time.Second, "100 messages published", func() bool { return published.Load() >= 100 })
	srv.stop()
	atStop := published.Load()
	// The publisher keeps trying while the server is down.
	time.Sleep(time.Second)
	duringOutage := published.Load()
	if duringOutage > atStop+1 {
		t.Errorf("%d publishes succeeded while the server was down", duringOutage-atStop)
	}
	srv.start()

	pubDone.Wait()
	if pubErr != nil {
		t.Fatalf("Publish: %v", pubErr)
	}
	waitFor(t, 20*time.Second, "all messages handled", func() bool { return got.len() == n })
	if err := stopConsumer(); err != nil {
		t.Errorf("consumer Run: %v", err)
	}

	if missing, extra := got.diff(want); len(missing)+len(extra) > 0 {
		t.Errorf("missing %v, extra %v", missing, extra)
	}
	if got.repeats != 0 {
		t.Errorf("%d ids handled more than once", got.repeats)
	}
	if r := pubConn.Stats().Reconnects; r < 1 {
		t.Errorf("publisher reconnects = %d, want at least 1", r)
	}
	if r := subConn.Stats().Reconnects; r < 1 {
		t.Errorf("consumer reconnects = %d, want at least 1", r)
	}
	var retries float64
	for _, reason := range retryReasons {
		retries += counterValue(t, metrics.publishRetries, "restart", "loader", topo.RawStream, reason)
	}
	if retries == 0 {
		t.Error("no publish retries counted across the outage")
	}
	t.Logf("published at stop %d; retries %v; duplicates skipped by the consumer %v; redeliveries %v",
		atStop, retries,
		counterValue(t, metrics.duplicates, "restart", "augmenter", topo.RawStream),
		counterValue(t, metrics.redelivered, "restart", "augmenter", topo.RawStream))

	info, err := subJS.Stream(t.Context(), topo.RawStream)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("stream holds %d messages after every id was handled", msgs)
	}
}
