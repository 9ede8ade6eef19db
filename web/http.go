package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mercury-broker/mercury/broker"
)

// handlePost publishes, sends or pushes the request body as one message.
// Success is 200 with an empty body, as existing clients expect.
func (s *Server) handlePost(p pattern) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		topic, aerr := s.topicOf(p, r)
		if aerr != nil {
			aerr.write(w)
			return
		}
		if !s.origin.allows(r) {
			http.Error(w, "Origin check failed", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxMessageSize))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				(&apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_big", Topic: string(topic),
					Message: fmt.Sprintf("message too big: the limit is %d bytes", s.opts.MaxMessageSize)}).write(w)
				return
			}
			(&apiError{Status: http.StatusBadRequest, Code: "body", Topic: string(topic),
				Message: "failed to read the request body: " + err.Error()}).write(w)
			return
		}
		m := &broker.Message{Topic: topic, Binary: isBinaryBody(r, body), Payload: body}
		if aerr := s.accept(p, m, nil); aerr != nil {
			aerr.write(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// isBinaryBody decides how a POSTed message travels: as a binary frame when
// declared application/octet-stream or when it is not valid UTF-8 (a text
// frame must be), as a text frame otherwise. The bytes are never altered.
func isBinaryBody(r *http.Request, body []byte) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/octet-stream") || !utf8.Valid(body)
}

// accept hands a message that entered on pattern p to the broker; from is
// the sending connection, nil for HTTP.
func (s *Server) accept(p pattern, m *broker.Message, from *conn) *apiError {
	if aerr := s.validate(m); aerr != nil {
		return aerr // refused by the bus's schema: never delivered
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
		err = s.broker.Push(m)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrQueueFull):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "queue_full", Topic: string(m.Topic),
			Message: "queue is full: no puller has taken the waiting messages; retry later"}
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Topic: string(m.Topic), Message: err.Error()}
	}
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
