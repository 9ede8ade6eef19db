package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
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
	b          *Broker
	id         string
	responders int
	answers    chan Answer // room for every responder: Reply never blocks
}

// requests holds the pending requests, bounded so that requesters cannot
// grow the broker's memory without limit.
type requests struct {
	mu      sync.Mutex
	pending map[string]*Pending
	next    uint64
	late    atomic.Uint64 // answers that came after their request ended
}

// Request sends m to the subscribers of its topic and of the topics below
// it that are Responders (a request addresses one agent, a rack or a
// fleet); other receivers do not get it. It fails with ErrNoResponders when no responder
// got it, with ErrTooManyRequests when MaxPendingRequests wait already.
// The caller must Close the returned Pending.
func (b *Broker) Request(m *Message) (*Pending, error) {
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
	p := &Pending{b: b, id: b.requestPrefix() + strconv.FormatUint(rq.next, 36)}
	rq.pending[p.id] = p
	rq.mu.Unlock()

	// Downwards: a request to /livesys reaches every agent below it.
	var responders []Responder
	for _, r := range b.subs.Below(string(m.Topic), nil) {
		if rs, ok := r.(Responder); ok {
			responders = append(responders, rs)
		}
	}
	// The channel is sized before anyone can answer.
	p.answers = make(chan Answer, len(responders))
	for _, rs := range responders {
		if rs.DeliverRequest(m, p.id) {
			p.responders++
		}
	}
	if p.responders == 0 {
		p.Close()
		return nil, ErrNoResponders
	}
	return p, nil
}

// requestPrefix makes request ids unique across the brokers of a cluster
// and across restarts.
func (b *Broker) requestPrefix() string {
	if b.bp != nil {
		return b.bp.Node() + "." + b.epoch + "."
	}
	return b.epoch + "."
}

// ID returns the request's id, as responders see it.
func (p *Pending) ID() string { return p.id }

// Responders returns how many responders got the request.
func (p *Pending) Responders() int { return p.responders }

// Wait returns the first answer, or with all every answer, once every
// responder answered or timeout passed. It fails with ErrRequestTimeout
// when none came, or with ctx's error when ctx ends first (the requester
// left). The timer counts in the monotonic clock and is stopped on return.
func (p *Pending) Wait(ctx context.Context, timeout time.Duration, all bool) ([]Answer, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var got []Answer
	for len(got) < p.responders {
		select {
		case a := <-p.answers:
			got = append(got, a)
			if !all {
				return got, nil
			}
		case <-t.C:
			if len(got) == 0 {
				return nil, ErrRequestTimeout
			}
			return got, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
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
// which id; it checks that before calling Reply.
func (b *Broker) Reply(id string, a Answer) error {
	rq := &b.requests
	rq.mu.Lock()
	p := rq.pending[id]
	if p == nil {
		rq.mu.Unlock()
		rq.late.Add(1)
		return ErrRequestEnded
	}
	select {
	case p.answers <- a:
	default: // a responder answered twice: the web layer prevents it
	}
	rq.mu.Unlock()
	return nil
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
	dst = append(dst, `,"time":"`...)
	dst = m.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","data":`...)
	switch {
	case m.Binary:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, m.Payload)
		dst = append(dst, `","encoding":"base64"`...)
	case isJSON(m.Payload):
		dst = append(dst, m.Payload...)
	default:
		dst = appendJSONString(dst, string(m.Payload))
		dst = append(dst, `,"encoding":"text"`...)
	}
	return append(dst, '}')
}

// Waiting reports whether request id still waits for answers.
func (b *Broker) Waiting(id string) bool {
	b.requests.mu.Lock()
	defer b.requests.mu.Unlock()
	return b.requests.pending[id] != nil
}
