package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process NATS server.
type EmbeddedOptions struct {
	// StoreDir holds the JetStream data; required. A server started again
	// on the same directory recovers the streams and buckets.
	StoreDir string
	// Port is the client port on 127.0.0.1; 0 picks a free one.
	Port int
	// MaxPayload is the largest message in bytes; 0 keeps the server's
	// default of 1 MiB.
	MaxPayload int32
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10s.
	ReadyTimeout time.Duration
	// ServerName names the server in logs and monitoring. Default
	// "cyclegan-embedded".
	ServerName string
	// Logger receives the server's notices, warnings and errors; nil
	// discards them.
	Logger *slog.Logger
}

// EmbeddedServer is a nats-server with JetStream running in this process,
// listening on 127.0.0.1 only.
type EmbeddedServer struct {
	srv *server.Server
}

// StartEmbedded starts the server and waits until it accepts clients, at
// most ReadyTimeout or until ctx ends.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*EmbeddedServer, error) {
	if o.StoreDir == "" {
		return nil, errors.New("start embedded NATS server: StoreDir is required")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if o.ServerName == "" {
		o.ServerName = "cyclegan-embedded"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT // the server treats 0 as its default port 4222
	}

	srv, err := server.NewServer(&server.Options{
		ServerName: o.ServerName,
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		MaxPayload: o.MaxPayload,
		NoSigs:     true, // signals belong to the program that embeds the server
		NoLog:      o.Logger == nil,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS server: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(serverLogger{log: o.Logger.With("component", "nats-server")}, false, false, false)
	}

	go srv.Start()
	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(o.ReadyTimeout) }()
	select {
	case ok := <-ready:
		if !ok {
			srv.Shutdown()
			return nil, fmt.Errorf("start embedded NATS server on port %d with store %s: not ready after %s", o.Port, o.StoreDir, o.ReadyTimeout)
		}
	case <-ctx.Done():
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded NATS server: %w", ctx.Err())
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded NATS server with store %s: JetStream did not start", o.StoreDir)
	}
	return &EmbeddedServer{srv: srv}, nil
}

// ClientURL returns the nats:// URL clients connect to.
func (e *EmbeddedServer) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server, which closes client connections and flushes
// JetStream to disk, and waits for it to finish or for ctx to end.
func (e *EmbeddedServer) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down embedded NATS server: %w", ctx.Err())
	}
}

// serverLogger passes nats-server's log records to slog. Debug and trace
// records are off, and Fatalf logs at error level without exiting, because
// the server shares the process with the stages.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
