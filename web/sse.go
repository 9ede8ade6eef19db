package web

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// Server-Sent Events: GET /sub/{topic} with Accept: text/event-stream is
// the same subscription as the WebSocket one, for clients behind proxies
// that mangle WebSocket. Each event's id is the message's position
// (EPOCH:SEQ), so Last-Event-ID resumes, and a position from before a
// restart is told apart; a comment keeps idle proxies open.

func acceptsEventStream(r *http.Request) bool {
	return headerHasToken(r.Header, "Accept", "text/event-stream")
}

// sseStream is one event-stream subscriber: the broker delivers into a
// bounded queue; the request's goroutine writes. A stream that overflows
// its queue, or whose write does not finish within the write timeout, is
// a slow consumer and ends, as a WebSocket does.
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
	bytes    int // queued and being written, as a WebSocket's queue counts
	overflow bool
	wake     chan struct{} // signalled when the queue gains messages
	presence [][]byte      // presence events waiting (presence.go)
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

// take returns what is queued; its bytes count until written says so.
func (st *sseStream) take() (ms []*broker.Message, overflow bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ms, st.queue = st.queue, nil
	return ms, st.overflow
}

// written releases the bytes of ms, taken and now written.
func (st *sseStream) written(ms []*broker.Message) {
	n := 0
	for _, m := range ms {
		n += len(m.Payload)
	}
	st.mu.Lock()
	st.bytes = max(st.bytes-n, 0) // an overflow may have dropped the queue meanwhile
	st.mu.Unlock()
	st.sent.Add(uint64(len(ms)))
}

// sseWriter writes a stream's events, each batch bounded by the write
// timeout: a client that stops reading cannot hold the stream's goroutine,
// socket and slot. The bound is lifted once the batch is written, or it
// would fail the heartbeat of a stream that was merely quiet.
type sseWriter struct {
	bw      *bufio.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

// send writes what write puts in the buffer, and flushes it to the client.
func (sw *sseWriter) send(write func(bw *bufio.Writer)) error {
	// Set before writing: the buffer may flush to the network on its own.
	defer boundWrite(sw.rc, sw.timeout).lift()
	write(sw.bw)
	if err := sw.bw.Flush(); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// writeError writes an event named error that says why the stream ends.
func writeError(bw *bufio.Writer, e *apiError) {
	bw.WriteString("event: error\ndata: ")
	bw.Write(e.JSON())
	bw.WriteString("\n\n")
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
	var backlog []*broker.Message
	var gap *broker.Gap
	var unsubscribe func()
	if opts.hasSince {
		backlog, gap, unsubscribe = s.broker.SubscribeFrom(topic, st, opts.since)
	} else {
		unsubscribe = s.broker.Subscribe(topic, st)
	}
	defer unsubscribe()
	defer st.joinPresence(s.broker, opts.presence)()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if r.ProtoMajor == 1 {
		// The stream's end is its connection's: the server's own last
		// write (the end of the chunked body) stays bounded by the
		// deadline left in force below, which must not outlive the
		// connection. (Over HTTP/2 it would close every other stream.)
		h.Set("Connection", "close")
	}
	w.WriteHeader(http.StatusOK)
	// A slow consumer's connection is reset, so the kernel keeps nothing
	// for a peer that does not read; an orderly end turns this off.
	abortiveClose(r, true)
	sw := &sseWriter{bw: bufio.NewWriter(w), rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
	cut := false // a slow consumer: no more writes at all
	defer func() {
		if cut {
			sw.rc.SetWriteDeadline(time.Now())
		} else {
			sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
		}
	}()
	// slow ends the stream as a slow consumer; what it held is released
	// as the handler returns.
	slow := func(why string) {
		cut = true
		reason = "slow consumer: " + why
		s.slowConsumers.Add(1)
		s.log.Info("slow consumer closed", "remote", r.RemoteAddr, "pattern", "sub", "topic", topic, "transport", "sse", "why", why)
	}
	// failed reports whether a write failed, and says why.
	failed := func(err error) bool {
		switch {
		case err == nil:
			return false
		case errors.Is(err, os.ErrDeadlineExceeded):
			slow("write timed out")
		default:
			reason = "write failed: " + err.Error()
		}
		return true
	}
	err := sw.send(func(bw *bufio.Writer) {
		if gap != nil {
			writeGap(bw, gap)
		}
		for _, m := range backlog {
			writeEvent(bw, m, opts.envelope)
		}
	})
	if failed(err) {
		return
	}
	backlog = nil

	heartbeat := time.NewTicker(s.opts.SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			reason = "shutting down"
			abortiveClose(r, false)
			return
		case <-st.kill:
			reason = closedByAdmin
			abortiveClose(r, false)
			sw.send(func(bw *bufio.Writer) {
				writeError(bw, &apiError{Code: "closed", Topic: string(topic), Message: closedByAdmin})
			})
			return
		case <-expired:
			reason = "token expired"
			abortiveClose(r, false)
			sw.send(func(bw *bufio.Writer) {
				writeError(bw, &apiError{Code: auth.CodeExpired, Topic: string(topic), Message: "token expired"})
			})
			return
		case <-heartbeat.C:
			err = sw.send(func(bw *bufio.Writer) { bw.WriteString(": keepalive\n\n") })
		case <-st.wake:
			ms, overflow := st.take()
			if overflow {
				slow("queue full")
				return
			}
			events := st.takePresence()
			// Write what waits, then flush once.
			err = sw.send(func(bw *bufio.Writer) {
				for _, m := range ms {
					writeEvent(bw, m, opts.envelope)
				}
				writePresence(bw, events)
			})
			if err == nil {
				st.written(ms)
			}
		}
		if failed(err) {
			return
		}
	}
}

// writeGap writes an event named gap. A reset's carries the id EPOCH:0,
// the start of the broker's epoch: a client that reconnects before the
// next event resumes from there, not from its position of another life.
func writeGap(bw *bufio.Writer, gap *broker.Gap) {
	if gap.Reset {
		bw.WriteString("id: ")
		bw.WriteString(broker.Position{Epoch: gap.Epoch}.String())
		bw.WriteByte('\n')
	}
	g, _ := json.Marshal(gap)
	bw.WriteString("event: gap\ndata: ")
	bw.Write(g)
	bw.WriteString("\n\n")
}

// writeEvent writes m as one event: id is its position, EPOCH:SEQ (SEQ
// alone without an epoch), which Last-Event-ID gives back; data is its
// payload line by line, or its envelope. A binary payload is base64, in
// an event named "binary".
func writeEvent(bw *bufio.Writer, m *broker.Message, envelope bool) {
	var seq [20]byte
	bw.WriteString("id: ")
	if m.Epoch != "" {
		bw.WriteString(m.Epoch)
		bw.WriteByte(':')
	}
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
