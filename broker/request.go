package broker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request/reply: a request goes to the subscribers of its topic (and of
// the topics above it) like a message, but is neither sequenced, stored
// nor replayed. Receivers that can answer (Responder) get it with an id;
// their answers come back through Reply to the one waiting for them.

// Responder is the capability of a Receiver that takes requests (a
// WebSocket subscriber). DeliverRequest queues the request under id and
// reports whether this receiver may answer it; one that may not (a raw
// subscriber) takes it as an ordinary message, and is not waited for.
type Responder interface {
	DeliverRequest(m *Message, id string) bool
}

// Answer is one responder's answer to a request.
type Answer struct {
	User    string // the responder's credential subject; "" anonymous
	Topic   Topic  // the responder's subscription
	Binary  bool
	Text    bool // text that is not JSON (else JSON, unless Binary)
	Payload []byte
}

// DefaultMaxPendingRequests is the default of Options.MaxPendingRequests.
const DefaultMaxPendingRequests = 10000

// Errors of request/reply.
var (
	ErrNoResponders    = errors.New("broker: no subscriber can answer requests on this topic")
	ErrTooManyRequests = errors.New("broker: too many requests are waiting for answers")
	ErrRequestTimeout  = errors.New("broker: no answer in time")
	// ErrRequestEnded: the request already had its answer, or timed out.
	ErrRequestEnded = errors.New("broker: the request has ended")
)

// Pending is a request waiting for its answers.
type Pending struct {
	b        *Broker
	id       string
	deadline time.Time // monotonic

	mu         sync.Mutex
	responders int
	got        []Answer
	notify     chan struct{} // signalled when an answer comes
}

// requests holds the pending requests, bounded so that requesters cannot
// grow the broker's memory without limit, and, on a cluster, the ids of
// other brokers' requests this broker delivered, until their deadline.
type requests struct {
	mu      sync.Mutex
	pending map[string]*Pending
	remote  map[string]time.Time // id → deadline (monotonic)
	next    uint64
	late    atomic.Uint64 // answers that came after their request ended
}

// Request sends m to the subscribers of its topic and of the topics below
// it that are Responders (a request addresses one agent, a rack or a
// fleet), on every broker of a cluster; other receivers do not get it. It
// fails with ErrNoResponders when no responder got it, with
// ErrTooManyRequests when MaxPendingRequests wait already. The request
// waits for answers until timeout; the caller must Close it.
func (b *Broker) Request(m *Message, timeout time.Duration) (*Pending, error) {
	m.Time = b.opts.Now()
	rq := &b.requests
	rq.mu.Lock()
	if len(rq.pending) >= b.opts.MaxPendingRequests {
		rq.mu.Unlock()
		return nil, ErrTooManyRequests
	}
	if rq.pending == nil {
		rq.pending = make(map[string]*Pending)
	}
	rq.next++
	p := &Pending{b: b, id: b.requestPrefix() + strconv.FormatUint(rq.next, 36), deadline: time.Now().Add(timeout),
		notify: make(chan struct{}, 1)}
	rq.pending[p.id] = p
	rq.mu.Unlock()

	n := b.deliverRequest(m, p.id)
	if b.agbp != nil {
		remote, err := b.agbp.SendRequest(m, p.id, timeout)
		if err != nil && n == 0 {
			p.Close()
			return nil, err
		}
		n += remote
	}
	p.mu.Lock()
	p.responders += n
	p.mu.Unlock()
	if n == 0 {
		p.Close()
		return nil, ErrNoResponders
	}
	return p, nil
}

// deliverRequest hands m to this broker's responders at or below its
// topic, and returns how many may answer.
func (b *Broker) deliverRequest(m *Message, id string) int {
	n := 0
	for _, r := range b.subs.Below(string(m.Topic), nil) {
		if rs, ok := r.(Responder); ok && rs.DeliverRequest(m, id) {
			n++
		}
	}
	return n
}

// requestPrefix makes request ids unique across the brokers of a cluster
// (the node comes first: answers find their way back by it) and across
// restarts.
func (b *Broker) requestPrefix() string {
	if b.bp != nil {
		return b.bp.Node() + "." + b.epoch + "."
	}
	return b.epoch + "."
}

// ID returns the request's id, as responders see it.
func (p *Pending) ID() string { return p.id }

// Responders returns how many responders got the request.
func (p *Pending) Responders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.responders
}

func (p *Pending) add(a Answer) {
	p.mu.Lock()
	p.got = append(p.got, a)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Wait returns the first answer, or with all every answer, once every
// responder answered or the request's timeout passed. It fails with
// ErrRequestTimeout when none came, or with ctx's error when ctx ends
// first (the requester left). The timer counts in the monotonic clock and
// is stopped on return.
func (p *Pending) Wait(ctx context.Context, all bool) ([]Answer, error) {
	t := time.NewTimer(time.Until(p.deadline))
	defer t.Stop()
	for {
		p.mu.Lock()
		got, done := len(p.got), len(p.got) >= p.responders
		answers := p.got
		p.mu.Unlock()
		if got > 0 && (!all || done) {
			if !all {
				answers = answers[:1]
			}
			return answers, nil
		}
		select {
		case <-p.notify:
		case <-t.C:
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.got) == 0 {
				return nil, ErrRequestTimeout
			}
			return p.got, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the request: later answers are refused with ErrRequestEnded
// and counted (see LateAnswers).
func (p *Pending) Close() {
	rq := &p.b.requests
	rq.mu.Lock()
	delete(rq.pending, p.id)
	rq.mu.Unlock()
}

// Reply hands a responder's answer to the request id. It fails with
// ErrRequestEnded when the request is no longer waiting: the answer came
// too late, and is counted. Only the web layer knows which connection got
// which id; it checks that before calling Reply. The answer to another
// broker's request is sent to that broker.
func (b *Broker) Reply(id string, a Answer) error {
	rq := &b.requests
	rq.mu.Lock()
	p := rq.pending[id]
	deadline, remote := rq.remote[id]
	rq.mu.Unlock()
	switch {
	case p != nil:
		p.add(a)
		return nil
	case remote && time.Now().Before(deadline) && b.agbp != nil:
		node, _, _ := strings.Cut(id, ".")
		return b.agbp.SendAnswer(node, id, a)
	}
	rq.late.Add(1)
	return ErrRequestEnded
}

// PendingRequests returns how many requests wait for answers.
func (b *Broker) PendingRequests() int {
	b.requests.mu.Lock()
	defer b.requests.mu.Unlock()
	return len(b.requests.pending)
}

// LateAnswers returns how many answers came after their request ended.
func (b *Broker) LateAnswers() uint64 { return b.requests.late.Load() }

// RequestEnvelope returns request m in envelope form for the responder
// that got it under id:
//
//	{"reply":"<id>","topic":"/a/b","time":"…","data":<JSON>}
//
// with no seq: a request is not in the topic's sequence. data is encoded
// as in Envelope.
func (m *Message) RequestEnvelope(id string) []byte {
	dst := make([]byte, 0, len(m.Payload)+128)
	dst = append(dst, `{"reply":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"topic":`...)
	dst = appendJSONString(dst, string(m.Topic))
	return appendTimeAndData(dst, m)
}

// Waiting reports whether request id still waits for answers.
func (b *Broker) Waiting(id string) bool {
	b.requests.mu.Lock()
	defer b.requests.mu.Unlock()
	if b.requests.pending[id] != nil {
		return true
	}
	deadline, ok := b.requests.remote[id]
	return ok && time.Now().Before(deadline)
}
