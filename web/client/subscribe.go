package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Transport is how a subscription receives.
type Transport string

const (
	// TransportAuto uses a WebSocket, and Server-Sent Events while
	// WebSocket handshakes fail (a proxy that refuses upgrades).
	TransportAuto      Transport = ""
	TransportWebSocket Transport = "websocket"
	TransportSSE       Transport = "sse"
)

// SubscribeOptions configures Subscribe. The zero value subscribes live.
type SubscribeOptions struct {
	// Since, when set, replays what the broker keeps after this position
	// first: "SEQ", or "EPOCH:SEQ" as Message.Position gives ("0" for
	// everything kept).
	Since string
	// OnGap hears of messages no longer kept (history evicted); with
	// Reset, the broker started afresh and what follows is numbered anew.
	OnGap func(Gap)
	// OnState hears of the subscription's state, with the error that
	// caused it (reconnecting, closed).
	OnState func(State, error)
	// Transport forces a WebSocket or Server-Sent Events.
	Transport Transport
}

// Subscribe receives every message on topic and below it, calling fn for
// each in order, until ctx ends. It reconnects by itself, resuming from
// the last message fn was given, so a restart of a broker with a durable
// bus, or a move to another broker of a cluster, loses nothing and
// repeats nothing. It returns fn's error, ctx's when it ends, or a
// refusal reconnecting cannot mend (a *HandshakeError or *APIError of
// status 400, 403 or 404; closes 4403, 4404, 4409).
func (c *Client) Subscribe(ctx context.Context, topic string, opts *SubscribeOptions, fn func(Message) error) error {
	if opts == nil {
		opts = &SubscribeOptions{}
	}
	s := &subscription{link: link{c: c, onState: opts.OnState}, topic: topic, opts: opts, fn: fn}
	if opts.Since != "" {
		if err := s.pos.parse(opts.Since); err != nil {
			return err
		}
	}
	return s.run(ctx, func(ctx context.Context, opened opened) error {
		if opts.Transport == TransportSSE {
			return s.stream(ctx, opened)
		}
		err := s.receive(ctx, opened)
		if _, refused := err.(handshakeFailed); refused && opts.Transport == TransportAuto {
			// A WebSocket that never opened: Server-Sent Events now, and a
			// WebSocket again next time (its refusal may have passed).
			return s.stream(ctx, opened)
		}
		return unwrapHandshake(err)
	})
}

// position is where a subscription resumes.
type position struct {
	seq   uint64
	epoch string
	has   bool
}

func (p *position) parse(s string) error {
	epoch, seq := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		epoch, seq = s[:i], s[i+1:]
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return fmt.Errorf("client: bad position %q: want SEQ or EPOCH:SEQ", s)
	}
	p.seq, p.epoch, p.has = n, epoch, true
	return nil
}

func (p *position) query() url.Values {
	if !p.has {
		return nil
	}
	q := url.Values{"since": {strconv.FormatUint(p.seq, 10)}}
	if p.epoch != "" {
		q.Set("epoch", p.epoch)
	}
	return q
}

type subscription struct {
	link
	topic string
	opts  *SubscribeOptions
	fn    func(Message) error
	pos   position
}

// fnError is the application's error, which ends Subscribe, Pull or Bus.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// handshakeFailed is a WebSocket that never opened.
type handshakeFailed struct{ err error }

func (e handshakeFailed) Error() string { return e.err.Error() }

func unwrapHandshake(err error) error {
	if h, ok := err.(handshakeFailed); ok {
		return h.err
	}
	return err
}

// receive reads one WebSocket until it ends.
func (s *subscription) receive(ctx context.Context, opened opened) error {
	conn, stop, err := s.openConn(ctx, s.c.url("sub", s.topic, s.pos.query()))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrNoEnvelope) {
			return err
		}
		return handshakeFailed{err}
	}
	defer stop()
	opened()
	for {
		in, err := s.readFrame(ctx, conn)
		if err != nil {
			return err
		}
		switch {
		case in.Gap != nil:
			s.gap(*in.Gap)
		case in.Error != nil:
			s.c.onError(in.Error)
		case in.Message != nil && in.Message.Seq > 0: // a request has no seq
			if err := s.deliver(in.Message); err != nil {
				return err
			}
		}
	}
}

func (s *subscription) gap(g Gap) {
	if g.Reset {
		// The broker started a new life: what follows is numbered afresh.
		s.pos = position{epoch: g.Epoch, has: true}
	}
	if s.opts.OnGap != nil {
		s.opts.OnGap(g)
	}
}

func (s *subscription) deliver(e *Envelope) error {
	// After a reconnection the broker starts after our position; this
	// guards against a repeat all the same.
	if s.pos.has && e.Seq <= s.pos.seq && (e.Epoch == "" || e.Epoch == s.pos.epoch) {
		return nil
	}
	m, err := messageOf(e)
	if err != nil {
		s.c.onError(err)
		return nil
	}
	if err := s.fn(m); err != nil {
		return fnError{err}
	}
	s.pos.seq, s.pos.has = e.Seq, true
	if e.Epoch != "" {
		s.pos.epoch = e.Epoch
	}
	return nil
}

// final reports whether err is a refusal reconnecting cannot mend.
func final(err error) bool {
	if errors.Is(err, ErrNoEnvelope) {
		return true
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 && he.Status != http.StatusUnauthorized && he.Status != http.StatusTooManyRequests
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound:
			return true
		}
		return false
	}
	switch CloseStatus(err) {
	case 4403, 4404, 4409:
		return true
	}
	return false
}
