package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// errTimedOut is the cause of a session's context once --timeout passed.
var errTimedOut = errors.New("timed out")

// sessionFlags are the flags that say when a session ends.
type sessionFlags struct {
	count   int
	timeout time.Duration
}

func addSessionFlags(fs *flag.FlagSet, counted string) *sessionFlags {
	s := &sessionFlags{}
	if counted != "" {
		fs.IntVar(&s.count, "count", 0, "exit after `N` "+counted+" (0: no limit)")
	}
	fs.DurationVar(&s.timeout, "timeout", 0, "give up after `DURATION` (e.g. 5s); with --count, not having received N messages by then is an error")
	return s
}

func (s *sessionFlags) check() error {
	if s.count < 0 {
		return command.UsageError("--count %d: want 0 or more", s.count)
	}
	if s.timeout < 0 {
		return command.UsageError("--timeout %s: want a positive duration", s.timeout)
	}
	return nil
}

// context returns the session's context: ended by SIGINT or SIGTERM (a
// person pressing Ctrl-C leaves normally), and after --timeout.
func (s *sessionFlags) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	if s.timeout <= 0 {
		return ctx, stop
	}
	tctx, cancel := context.WithTimeoutCause(ctx, s.timeout, errTimedOut)
	return tctx, func() { cancel(); stop() }
}

// outcome turns how a receiving session ended into the command's result:
// with --count, running out of time before N messages came is a failure.
func (s *sessionFlags) outcome(ctx context.Context, received int, err error) error {
	if err != nil {
		return err
	}
	if s.count > 0 && received < s.count && timedOut(ctx) {
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("timed out after %s: %d of %d messages received", s.timeout, received, s.count)}
	}
	return nil
}

func timedOut(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errTimedOut) }

// backoff spaces reconnection attempts: from 100ms, doubling, up to 5s,
// each ±20% so that many clients do not come back at once.
type backoff struct{ next time.Duration }

const (
	backoffFirst = 100 * time.Millisecond
	backoffMax   = 5 * time.Second
)

func (b *backoff) wait() time.Duration {
	if b.next == 0 {
		b.next = backoffFirst
	}
	d := b.next
	b.next = min(2*b.next, backoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.next = 0 }

// sleep waits d, or less when ctx ends; it reports whether ctx is still
// going.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
