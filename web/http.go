package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// handlePost publishes, sends or pushes the request body as one message.
// Success is 200 with an empty body, as existing clients expect, or
// {"seq":N} for a client that asks for JSON.
func (s *Server) handlePost(p pattern) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		topic, aerr := s.topicOf(p, r)
		if aerr != nil {
			aerr.write(w)
			return
		}
		grant, aerr := s.authorizeRequest(r, actionOf(p), topic)
		if aerr != nil {
			s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w) // before reading the body
			return
		}
		if !s.allowPost(w, r, p, topic) {
			return
		}
		opts, aerr := parseConnOptions(r, topic)
		if aerr != nil {
			s.refused(refusedOther, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		// The body must arrive in time (slowloris). Once it has, the
		// deadline is lifted, so the wait for a durable confirm is not cut
		// short; when it has not, it stays, so the server does not wait for
		// the rest of the body before answering.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(s.opts.RequestTimeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxMessageSize))
		if err == nil {
			rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			w.Header().Set("Connection", "close")
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.refused(refusedLimits, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_big", Topic: string(topic),
					Message: fmt.Sprintf("message too big: the limit is %d bytes", s.opts.MaxMessageSize)}, r.RemoteAddr, nil).write(w)
				return
			}
			(&apiError{Status: http.StatusBadRequest, Code: "body", Topic: string(topic),
				Message: "failed to read the request body: " + err.Error()}).write(w)
			return
		}
		m := &broker.Message{Topic: topic, Binary: isBinaryBody(r, body), Payload: body}
		if aerr := s.accept(p, m, nil, opts, grant); aerr != nil {
			aerr.write(w)
			return
		}
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"seq\":%s}\n", strconv.FormatUint(m.Seq, 10))
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// wantsJSON reports whether the client asked for a JSON answer.
func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for t := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(t), ";")
			if strings.EqualFold(mt, "application/json") {
				return true
			}
		}
	}
	return false
}

// isBinaryBody decides how a POSTed message travels: as a binary frame when
// declared application/octet-stream or when it is not valid UTF-8 (a text
// frame must be), as a text frame otherwise. The bytes are never altered.
func isBinaryBody(r *http.Request, body []byte) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/octet-stream") || !utf8.Valid(body)
}

// accept hands a message that entered on pattern p to the broker; from is
// the sending connection, nil for HTTP; g is what the sender may do. It is
// the one way in for every message, WebSocket frame or POST body alike.
func (s *Server) accept(p pattern, m *broker.Message, from *conn, opts connOptions, g *auth.Grant) *apiError {
	if aerr := s.check(p, m, opts.remote, g); aerr != nil {
		return aerr
	}
	var err error
	switch p {
	case patternPub:
		err = s.broker.Publish(m)
	case patternBus:
		var sender broker.Receiver
		if from != nil {
			sender = from
		}
		err = s.broker.SendBus(m, sender)
	case patternPush:
		err = s.broker.Push(m, broker.PushOptions{MustExist: opts.mustExist, TTL: opts.ttl})
	}
	if err != nil {
		return s.refusedByBroker(err, m, opts.remote)
	}
	if from != nil {
		from.msgsIn.Add(1)
	}
	return nil
}

// check authorizes and validates a message before the broker sees it.
func (s *Server) check(p pattern, m *broker.Message, remote string, g *auth.Grant) *apiError {
	if aerr := authorize(g, actionOf(p), m.Topic); aerr != nil {
		return s.refused(refusedRights, aerr, remote, m.Payload) // not the sender's to publish
	}
	if aerr := s.validate(m); aerr != nil {
		return s.refused(refusedSchema, aerr, remote, m.Payload) // never delivered
	}
	return nil
}

// refusedByBroker turns a broker error into the refusal the client gets.
func (s *Server) refusedByBroker(err error, m *broker.Message, remote string) *apiError {
	reason := refusedOther
	if errors.Is(err, broker.ErrQueueFull) {
		reason = refusedLimits
	}
	return s.refused(reason, apiErrorFor(err, m.Topic), remote, m.Payload)
}

// apiErrorFor turns a broker error into what the client is told.
func apiErrorFor(err error, topic broker.Topic) *apiError {
	e := &apiError{Topic: string(topic), Message: err.Error()}
	switch {
	case errors.Is(err, broker.ErrQueueFull):
		e.Status, e.Code = http.StatusServiceUnavailable, "queue_full"
		e.Message = "queue is full: no puller has taken the waiting messages; retry later"
		var full *broker.QueueFullError
		if errors.As(err, &full) {
			// Name the limit: a queue's own, or the broker's memory.
			e.Message = full.Error() + "; no puller has taken enough of what waits; retry later"
		}
	case errors.Is(err, broker.ErrNoQueue):
		e.Status, e.Code = http.StatusNotFound, "no_queue"
		e.Message = "queue does not exist (must_exist): it expired after its TTL, or was never created"
	case errors.Is(err, broker.ErrNoDeadLetters):
		e.Status, e.Code = http.StatusNotFound, "no_dead_letter"
	case errors.Is(err, broker.ErrUnavailable):
		// Clustered and cut off from NATS: nothing was stored or sent.
		e.Status, e.Code = http.StatusServiceUnavailable, "cluster_unavailable"
		e.Message = "not accepted: " + err.Error() + "; retry later or on another broker"
	default:
		// The store failed to keep the message: it was not confirmed.
		e.Status, e.Code = http.StatusServiceUnavailable, "store"
	}
	return e
}

// headerHasToken reports whether a comma-separated header contains token,
// ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
