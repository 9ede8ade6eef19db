package web

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// Server-Sent Events: GET /sub/{topic} with Accept: text/event-stream is
// the same subscription as the WebSocket one, for clients behind proxies
// that mangle WebSocket. Each event's id is the message's sequence number,
// so Last-Event-ID resumes; a comment keeps idle proxies open.

func acceptsEventStream(r *http.Request) bool {
	return headerHasToken(r.Header, "Accept", "text/event-stream")
}

// sseStream is one event-stream subscriber: the broker delivers into a
// bounded queue; the request's goroutine writes.
type sseStream struct {
	limit int

	// For the admin API.
	id     uint64
	remote string
	topic  broker.Topic
	user   string
	opened time.Time
	sent   atomic.Uint64
	kill   chan struct{} // closed to end the stream (closeOnce)
	once   sync.Once

	mu       sync.Mutex
	queue    []*broker.Message
	bytes    int
	overflow bool
	wake     chan struct{} // signalled when the queue gains messages
}

// Deliver queues m without blocking (broker.Receiver).
func (st *sseStream) Deliver(m *broker.Message) {
	st.mu.Lock()
	if st.overflow {
		st.mu.Unlock()
		return
	}
	if st.bytes > 0 && st.bytes+len(m.Payload) > st.limit {
		st.overflow = true
		st.queue, st.bytes = nil, 0
	} else {
		st.queue = append(st.queue, m)
		st.bytes += len(m.Payload)
	}
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued.
func (st *sseStream) take() (ms []*broker.Message, overflow bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ms, st.queue, st.bytes = st.queue, nil, 0
	return ms, st.overflow
}

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, topic broker.Topic) {
	grant, aerr := s.authorizeRequest(r, auth.Sub, topic)
	if aerr != nil {
		s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w)
		return
	}
	opts, aerr := parseConnOptions(r, topic)
	if aerr != nil {
		s.refused(refusedOther, aerr, r.RemoteAddr, nil).write(w)
		return
	}
	st := &sseStream{limit: s.opts.OutgoingQueue, wake: make(chan struct{}, 1), kill: make(chan struct{}),
		remote: r.RemoteAddr, topic: topic, user: grant.Subject, opened: time.Now()}
	release, aerr := s.admitStream(st)
	if aerr != nil {
		s.refused(refusedLimits, aerr, r.RemoteAddr, nil).write(w)
		return
	}
	defer release()
	s.log.Info("event stream opened", "id", st.id, "remote", r.RemoteAddr, "pattern", "sub", "topic", topic, "user", st.user)
	reason := "client left"
	defer func() {
		s.log.Info("event stream closed", "id", st.id, "remote", r.RemoteAddr, "pattern", "sub", "topic", topic,
			"duration", time.Since(st.opened).Round(time.Millisecond), "reason", reason, "messages_out", st.sent.Load())
	}()
	// The stream ends when the token expires; the client reconnects with
	// a fresh one (EventSource reconnects by itself).
	var expired <-chan time.Time
	if !grant.Expires.IsZero() {
		t := time.NewTimer(time.Until(grant.Expires))
		defer t.Stop()
		expired = t.C
	}
	rc := http.NewResponseController(w)
	var backlog []*broker.Message
	var gap *broker.Gap
	var unsubscribe func()
	if opts.hasSince {
		backlog, gap, unsubscribe = s.broker.SubscribeSince(topic, st, opts.since)
	} else {
		unsubscribe = s.broker.Subscribe(topic, st)
	}
	defer unsubscribe()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	if gap != nil {
		g, _ := json.Marshal(gap)
		bw.WriteString("event: gap\ndata: ")
		bw.Write(g)
		bw.WriteString("\n\n")
	}
	for _, m := range backlog {
		writeEvent(bw, m, opts.envelope)
	}
	if bw.Flush() != nil || rc.Flush() != nil {
		return
	}
	backlog = nil

	heartbeat := time.NewTicker(s.opts.SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			reason = "shutting down"
			return
		case <-st.kill:
			reason = closedByAdmin
			e := &apiError{Code: "closed", Topic: string(topic), Message: closedByAdmin}
			bw.WriteString("event: error\ndata: ")
			bw.Write(e.JSON())
			bw.WriteString("\n\n")
			bw.Flush()
			rc.Flush()
			return
		case <-expired:
			reason = "token expired"
			e := &apiError{Code: auth.CodeExpired, Topic: string(topic), Message: "token expired"}
			bw.WriteString("event: error\ndata: ")
			bw.Write(e.JSON())
			bw.WriteString("\n\n")
			bw.Flush()
			rc.Flush()
			return
		case <-heartbeat.C:
			bw.WriteString(": keepalive\n\n")
		case <-st.wake:
			ms, overflow := st.take()
			if overflow {
				reason = "slow consumer"
				s.slowConsumers.Add(1)
				s.log.Info("slow consumer closed", "remote", r.RemoteAddr, "pattern", "sub", "topic", topic, "transport", "sse")
				return
			}
			// Write what waits, then flush once.
			for _, m := range ms {
				writeEvent(bw, m, opts.envelope)
			}
			st.sent.Add(uint64(len(ms)))
		}
		if bw.Flush() != nil || rc.Flush() != nil {
			return
		}
	}
}

// writeEvent writes m as one event: id is its sequence number; data is
// its payload line by line, or its envelope. A binary payload is base64,
// in an event named "binary".
func writeEvent(bw *bufio.Writer, m *broker.Message, envelope bool) {
	var seq [20]byte
	bw.WriteString("id: ")
	bw.Write(strconv.AppendUint(seq[:0], m.Seq, 10))
	bw.WriteByte('\n')
	data := m.Payload
	switch {
	case envelope:
		data = m.Envelope()
	case m.Binary:
		bw.WriteString("event: binary\n")
		data = base64.StdEncoding.AppendEncode(nil, m.Payload)
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		bw.WriteString("data: ")
		bw.Write(bytes.TrimSuffix(line, []byte{'\r'}))
		bw.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	bw.WriteByte('\n')
}
