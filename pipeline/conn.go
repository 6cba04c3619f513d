package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnOptions configure Connect. Only URLs is required.
type ConnOptions struct {
	Name      string   // client name shown by the server's monitoring
	URLs      []string // servers; the client picks one and fails over to the others
	User      string
	Password  string
	Token     string
	NKeyFile  string // nkey seed file
	CredsFile string // user JWT and seed file
	TLSCA     string // PEM file of the server's CA
	TLSCert   string // PEM file of the client certificate
	TLSKey    string // PEM file of the client key

	// ReconnectWait is the first delay between reconnect attempts. Each full
	// pass over the servers doubles it up to MaxReconnectWait. A random
	// jitter of up to half the delay is subtracted, so that clients do not
	// reconnect in step. Defaults: 250ms and 5s.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration

	Logger *slog.Logger // nil discards the records
}

// Connect connects to NATS and returns once connected or when ctx ends.
// The connection retries the first connect and every later reconnect
// forever, and logs connects, disconnects, reconnects, the close and async
// errors with the server's URL (user info redacted).
func Connect(ctx context.Context, o ConnOptions) (*nats.Conn, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("connect to NATS: no server URL")
	}
	log := o.Logger
	if log == nil {
		log = discardLogger()
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	if o.MaxReconnectWait < o.ReconnectWait {
		o.MaxReconnectWait = max(5*time.Second, o.ReconnectWait)
	}

	servers := strings.Join(o.URLs, ",")
	w := &connWatcher{log: log.With("servers", redactURLList(servers)), connected: make(chan struct{})}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(reconnectDelay(o.ReconnectWait, o.MaxReconnectWait)),
		nats.ConnectHandler(w.onConnect),
		nats.DisconnectErrHandler(w.onDisconnect),
		nats.ReconnectHandler(w.onReconnect),
		nats.ReconnectErrHandler(w.onReconnectErr),
		nats.ClosedHandler(w.onClosed),
		nats.ErrorHandler(w.onAsyncError),
	}
	authOpts, err := authOptions(o)
	if err != nil {
		return nil, err
	}
	opts = append(opts, authOpts...)

	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", redactURLList(servers), err)
	}
	select {
	case <-w.connected:
		return nc, nil
	case <-ctx.Done():
		nc.Close()
		return nil, fmt.Errorf("connect to NATS %s: %w", redactURLList(servers), ctx.Err())
	}
}

func authOptions(o ConnOptions) ([]nats.Option, error) {
	var opts []nats.Option
	if o.User != "" || o.Password != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read nkey seed file %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	return opts, nil
}

// reconnectDelay returns nats.go's delay callback: attempts counts the full
// passes over the server list.
func reconnectDelay(first, limit time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := first
		for i := 1; i < attempts && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		return d - rand.N(d/2+1)
	}
}

// connWatcher logs connection events. nats.go calls its methods from one
// goroutine, except that lastURL is read by every callback.
type connWatcher struct {
	log       *slog.Logger
	lastURL   atomic.Value // string: the server of the latest connect
	connected chan struct{}
	once      sync.Once
}

func (w *connWatcher) url() string {
	s, _ := w.lastURL.Load().(string)
	return s
}

func (w *connWatcher) onConnect(nc *nats.Conn) {
	w.lastURL.Store(nc.ConnectedUrlRedacted())
	w.log.Info("connected to NATS", "url", w.url(), "server_id", nc.ConnectedServerId(), "max_payload_bytes", nc.MaxPayload())
	w.once.Do(func() { close(w.connected) })
}

func (w *connWatcher) onDisconnect(nc *nats.Conn, err error) {
	if err == nil {
		// A nil error means the client closed the connection itself.
		w.log.Info("disconnected from NATS", "url", w.url())
		return
	}
	w.log.Warn("disconnected from NATS, reconnecting", "url", w.url(), "err", err)
}

func (w *connWatcher) onReconnect(nc *nats.Conn) {
	w.lastURL.Store(nc.ConnectedUrlRedacted())
	w.log.Info("reconnected to NATS", "url", w.url(), "reconnects", nc.Stats().Reconnects)
	w.once.Do(func() { close(w.connected) })
}

func (w *connWatcher) onReconnectErr(nc *nats.Conn, err error) {
	// Called after every failed attempt, so debug level keeps an outage
	// from flooding the log; the disconnect itself was logged as a warning.
	w.log.Debug("NATS reconnect attempt failed", "err", err)
}

func (w *connWatcher) onClosed(nc *nats.Conn) {
	if err := nc.LastError(); err != nil {
		w.log.Warn("NATS connection closed", "url", w.url(), "err", err)
		return
	}
	w.log.Info("NATS connection closed", "url", w.url())
}

func (w *connWatcher) onAsyncError(nc *nats.Conn, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	w.log.Warn("NATS async error", "url", w.url(), "subject", subject, "err", err)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
