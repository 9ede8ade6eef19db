package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RetryError is what OnState hears with StateReconnecting: why the
// connection was lost (or could not be made), and how long until the
// next try.
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v; reconnecting in %s", e.Err, e.Delay.Round(time.Millisecond))
}

func (e *RetryError) Unwrap() error { return e.Err }

// link runs the connections of one subscription, worker or bus peer one
// after the other, until ctx ends or one ends for good.
type link struct {
	c       *Client
	onState func(State, error)
	state   State
}

func (l *link) setState(s State, err error) {
	if s == l.state {
		return
	}
	l.state = s
	if l.onState != nil {
		l.onState(s, err)
	}
}

// opened is told by a connection that it is open: the backoff starts
// afresh.
type opened func()

// run calls connect for each connection. connect returns when its
// connection ends, with why. run returns ctx's error when it ends, the
// application's error (fnError unwrapped), or a refusal reconnecting
// cannot mend.
func (l *link) run(ctx context.Context, connect func(ctx context.Context, opened opened) error) error {
	bo := newBackoff(l.c.cfg.Backoff, l.c.cfg.MaxBackoff)
	l.setState(StateConnecting, nil)
	for {
		err := connect(ctx, func() {
			bo.reset()
			l.setState(StateOpen, nil)
		})
		if ctx.Err() != nil {
			l.setState(StateClosed, ctx.Err())
			return ctx.Err()
		}
		var fe fnError
		if errors.As(err, &fe) {
			l.setState(StateClosed, fe.err)
			return fe.err
		}
		if final(err) {
			l.setState(StateClosed, err)
			return err
		}
		if CloseStatus(err) == 4401 {
			// The token expired: reconnect with a fresh one.
			l.c.freshToken(ctx, l.c.currentToken())
		}
		d := bo.next()
		l.setState(StateReconnecting, &RetryError{Err: err, Delay: d})
		if !sleepCtx(ctx, d) {
			l.setState(StateClosed, ctx.Err())
			return ctx.Err()
		}
	}
}

// openConn dials u and keeps its token fresh while it is open; stop ends
// that (call it when the connection ends).
func (l *link) openConn(ctx context.Context, u string) (conn *Conn, stop func(), err error) {
	conn, err = Dial(ctx, u, l.c.dialOptions(ctx))
	if err != nil {
		return nil, nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.c.keepTokenFresh(tctx, conn)
	}()
	return conn, func() {
		cancel()
		<-done
		conn.CloseNow()
	}, nil
}

// readFrame reads the next frame that is not the answer to a token
// refresh; a refused refresh is reported to OnError.
func (l *link) readFrame(ctx context.Context, conn *Conn) (Incoming, error) {
	for {
		f, err := conn.Read(ctx)
		if err != nil {
			return Incoming{}, err
		}
		in, err := ParseIncoming(f.Data)
		if err != nil {
			l.c.onError(err)
			continue
		}
		switch {
		case in.TokenOK:
			continue
		case in.Error != nil && isTokenCode(in.Error.Code):
			l.c.onError(in.Error)
			continue
		}
		return in, nil
	}
}

func isTokenCode(code string) bool { return len(code) >= 5 && code[:5] == "token" }
