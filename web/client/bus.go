package client

import (
	"context"
	"errors"
	"net/url"
	"sync"
)

// BusOptions configures Bus.
type BusOptions struct {
	// Echo: the peer also gets what it sends.
	Echo bool
	// OnState hears of the peer's state, with the error that caused it.
	OnState func(State, error)
}

// Bus is one peer of a bus: what it sends reaches every other peer on
// exactly its topic (not below it). A bus keeps no history for its peers:
// a peer reconnects live.
type Bus struct {
	topic  string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why it ended, once done is closed

	mu      sync.Mutex
	conn    *Conn         // nil while not connected
	ready   chan struct{} // closed when conn is set
	pending []chan answer // frames sent on conn, waiting for their answer in order
}

type answer struct {
	seq uint64
	err error
}

// ErrBusClosed is the error of a Send on a Bus that ended.
var ErrBusClosed = errors.New("client: the bus peer is closed")

// Bus joins the bus topic and calls fn for each message another peer
// sends (and, with Echo, each this one sends), until ctx ends, Close is
// called, or fn returns an error. It connects, and reconnects, in the
// background.
func (c *Client) Bus(ctx context.Context, topic string, opts *BusOptions, fn func(Message) error) *Bus {
	if opts == nil {
		opts = &BusOptions{}
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Bus{topic: topic, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	q := url.Values{}
	if opts.Echo {
		q.Set("echo", "1")
	}
	u := c.url("bus", topic, q)
	l := &link{c: c, onState: opts.OnState}
	go func() {
		defer close(b.done)
		err := l.run(ctx, func(ctx context.Context, opened opened) error {
			conn, stop, err := l.openConn(ctx, u)
			if err != nil {
				return err
			}
			defer stop()
			b.connected(conn)
			defer b.disconnected()
			opened()
			for {
				in, err := l.readFrame(ctx, conn)
				if err != nil {
					return err
				}
				switch {
				case in.OK != nil:
					b.answered(answer{seq: *in.OK})
				case in.Error != nil:
					if !b.answered(answer{err: in.Error}) {
						c.onError(in.Error)
					}
				case in.Message != nil && fn != nil:
					m, err := messageOf(in.Message)
					if err != nil {
						c.onError(err)
						continue
					}
					if err := fn(m); err != nil {
						return fnError{err}
					}
				}
			}
		})
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}()
	return b
}

func (b *Bus) connected(conn *Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = conn
	close(b.ready)
}

// disconnected fails what waits for an answer: the broker may or may not
// have taken it, so it is not sent twice behind the caller's back.
func (b *Bus) disconnected() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = nil
	b.ready = make(chan struct{})
	for _, p := range b.pending {
		p <- answer{err: &APIError{Code: ErrorCodeConnectionLost, Topic: b.topic, Message: "connection lost before the broker answered; the message may have been accepted"}}
	}
	b.pending = nil
}

// answered settles the oldest frame sent; false when none waits.
func (b *Bus) answered(a answer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		return false
	}
	b.pending[0] <- a
	b.pending = b.pending[1:]
	return true
}

// Send sends data to the bus (encoded as Publish's) and returns its
// sequence number once the broker accepted it, or its refusal as an
// *APIError. It waits for a connection when there is none; a message sent
// on a connection lost before the answer fails with code
// connection_lost.
func (b *Bus) Send(ctx context.Context, data any) (uint64, error) {
	payload, binary, err := encodeData(data)
	if err != nil {
		return 0, err
	}
	for {
		b.mu.Lock()
		conn, ready := b.conn, b.ready
		if conn != nil {
			ch := make(chan answer, 1)
			// Written under the lock: answers come in the order frames were sent.
			if binary {
				err = conn.WriteBinary(ctx, payload)
			} else {
				err = conn.WriteText(ctx, string(payload))
			}
			if err == nil {
				b.pending = append(b.pending, ch)
			}
			b.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 0, &APIError{Code: ErrorCodeConnectionLost, Topic: b.topic, Message: "connection lost: " + err.Error()}
			}
			select {
			case a := <-ch:
				return a.seq, a.err
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		b.mu.Unlock()
		select {
		case <-ready:
		case <-b.done:
			return 0, ErrBusClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Close leaves the bus and returns why it had ended, if it had (fn's
// error, a refusal); nil otherwise.
func (b *Bus) Close() error {
	b.cancel()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if errors.Is(b.err, context.Canceled) {
		return nil
	}
	return b.err
}

// Done is closed once the peer has ended.
func (b *Bus) Done() <-chan struct{} { return b.done }
