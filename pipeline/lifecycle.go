package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// SignalContext returns a context that ends on SIGINT or SIGTERM. A stage
// binary passes it to its Run; stop releases the signal handlers, after
// which a second signal kills the process as usual.
func SignalContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// DrainContext returns a context that outlives ctx by timeout: it keeps
// ctx's values, is not canceled when ctx ends, and is canceled timeout
// later (or by cancel). The unit of work in progress at shutdown runs under
// it, so it can finish, ack and flush, but no longer than timeout.
func DrainContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	drainCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		timer := time.AfterFunc(timeout, cancel)
		context.AfterFunc(drainCtx, func() { timer.Stop() })
	})
	return drainCtx, func() {
		stop()
		cancel()
	}
}

// Group runs a stage's goroutines. The first one to fail cancels the
// group's context, which the others watch; Wait returns every failure.
type Group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// NewGroup returns a Group and the context its goroutines should use.
func NewGroup(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{ctx: ctx, cancel: cancel}, ctx
}

// Go runs fn in a goroutine. A non-nil error, other than the group's
// context ending, is recorded with name and cancels the group.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	g.wg.Go(func() {
		err := fn(g.ctx)
		if err == nil || g.stopped(err) {
			return
		}
		err = fmt.Errorf("%s: %w", name, err)
		g.mu.Lock()
		g.errs = append(g.errs, err)
		g.mu.Unlock()
		g.cancel(err)
	})
}

// stopped reports whether err only reports that the group's context ended.
func (g *Group) stopped(err error) bool {
	if g.ctx.Err() == nil {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Cause(g.ctx))
}

// Wait waits for every goroutine and returns their joined errors.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// CloseConn drains nc and waits up to timeout for it to close. Draining
// unsubscribes, lets handlers in progress finish and flushes pending
// publishes and acks. After timeout, CloseConn closes nc at once and
// returns an error.
func CloseConn(nc *nats.Conn, timeout time.Duration) error {
	if nc == nil || nc.IsClosed() {
		return nil
	}
	closed := nc.StatusChanged(nats.CLOSED)
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		nc.Close()
		return fmt.Errorf("drain NATS connection: not finished after %s, closed it", timeout)
	}
}

// backoff is a capped exponential delay with jitter for retry loops.
type backoff struct {
	first, limit, current time.Duration
}

func newBackoff(first, limit time.Duration) *backoff {
	return &backoff{first: first, limit: limit, current: first}
}

func (b *backoff) reset() { b.current = b.first }

// sleep waits the current delay less a random jitter of up to half of it,
// then doubles the delay. It returns false when ctx ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	wait := b.current - rand.N(b.current/2+1)
	b.current = min(2*b.current, b.limit)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
