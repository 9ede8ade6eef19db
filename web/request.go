package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// Request/reply: POST /req/{topic} sends its body to the subscribers of
// {topic}; envelope-mode WebSocket subscribers get it with a reply id and
// answer {"reply":id,"data":…} on the same socket. The first answer (or,
// with ?all=1, every answer) is the HTTP response.

// Bounds of ?timeout=.
const (
	DefaultRequestWait = 10 * time.Second
	MaxRequestWait     = 60 * time.Second
)

// ResponderHeader names the responder of an answer.
const ResponderHeader = "Mercury-Responder"

// handleRequest serves POST /req/{topic}: it needs the pub right on the
// topic.
func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	topic, aerr := s.routeTopic("req", r)
	if aerr != nil {
		aerr.write(w)
		return
	}
	if _, aerr := s.authorizeRequest(r, auth.Pub, topic); aerr != nil {
		s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w) // before reading the body
		return
	}
	if !s.allowPost(w, r, patternPub, topic) {
		return
	}
	wait, all, aerr := parseRequestQuery(r, topic)
	if aerr != nil {
		aerr.write(w)
		return
	}
	body, ok := s.readBody(w, r, topic)
	if !ok {
		return
	}
	m := &broker.Message{Topic: topic, Binary: isBinaryBody(r, body), Payload: body}
	if aerr := s.validate(m); aerr != nil {
		s.refused(refusedSchema, aerr, r.RemoteAddr, m.Payload).write(w) // never delivered
		return
	}
	p, err := s.broker.Request(m, wait)
	switch {
	case errors.Is(err, broker.ErrNoResponders):
		(&apiError{Status: http.StatusServiceUnavailable, Code: "no_responders", Topic: string(topic),
			Message: "no subscriber in envelope mode at or below this topic to answer the request"}).write(w)
		return
	case errors.Is(err, broker.ErrTooManyRequests):
		w.Header().Set("Retry-After", "1")
		s.refused(refusedLimits, &apiError{Status: http.StatusServiceUnavailable, Code: "too_many_requests", Topic: string(topic),
			Message: fmt.Sprintf("%d requests already wait for answers; retry later", s.broker.PendingRequests())}, r.RemoteAddr, nil).write(w)
		return
	case err != nil:
		apiErrorFor(err, topic).write(w)
		return
	}
	defer p.Close()
	answers, err := p.Wait(r.Context(), all)
	switch {
	case errors.Is(err, broker.ErrRequestTimeout):
		(&apiError{Status: http.StatusGatewayTimeout, Code: "timeout", Topic: string(topic),
			Message: fmt.Sprintf("no answer within %v from %d responder(s)", wait, p.Responders())}).write(w)
		return
	case err != nil:
		return // the requester left
	}
	if all {
		writeAnswers(w, answers)
		return
	}
	writeAnswer(w, answers[0])
}

// parseRequestQuery reads ?timeout= and ?all=.
func parseRequestQuery(r *http.Request, topic broker.Topic) (wait time.Duration, all bool, _ *apiError) {
	q := r.URL.Query()
	bad := func(name, value, want string) (time.Duration, bool, *apiError) {
		return 0, false, &apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic),
			Message: fmt.Sprintf("%s=%q: want %s", name, value, want)}
	}
	wait = DefaultRequestWait
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxRequestWait {
			return bad("timeout", v, "a positive duration of at most 60s, such as 500ms or 5s")
		}
		wait = d
	}
	switch v := q.Get("all"); v {
	case "", "0", "false":
	case "1", "true":
		all = true
	default:
		return bad("all", v, "1 or 0")
	}
	return wait, all, nil
}

// readBody reads a request's body within the request timeout and the
// message size limit; when it fails, the client has its answer.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, topic broker.Topic) ([]byte, bool) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.opts.RequestTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxMessageSize))
	if err == nil {
		rc.SetReadDeadline(time.Time{}) // the wait for answers is not the body's
		return body, true
	}
	w.Header().Set("Connection", "close")
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.refused(refusedLimits, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_big", Topic: string(topic),
			Message: fmt.Sprintf("message too big: the limit is %d bytes", s.opts.MaxMessageSize)}, r.RemoteAddr, nil).write(w)
		return nil, false
	}
	(&apiError{Status: http.StatusBadRequest, Code: "body", Topic: string(topic),
		Message: "failed to read the request body: " + err.Error()}).write(w)
	return nil, false
}

// writeAnswer writes one answer as the response body: JSON as JSON, text
// as text, binary as application/octet-stream.
func writeAnswer(w http.ResponseWriter, a broker.Answer) {
	switch {
	case a.Binary:
		w.Header().Set("Content-Type", "application/octet-stream")
	case a.Text:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set(ResponderHeader, a.User)
	w.Write(a.Payload)
}

// answerJSON is one answer in the response to ?all=1.
type answerJSON struct {
	User     *string         `json:"user"` // null: anonymous
	Topic    string          `json:"topic"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding,omitempty"` // text or base64, as in envelopes
}

// writeAnswers writes every answer as a JSON array.
func writeAnswers(w http.ResponseWriter, answers []broker.Answer) {
	list := make([]answerJSON, 0, len(answers))
	for _, a := range answers {
		j := answerJSON{Topic: string(a.Topic), Data: a.Payload}
		if a.User != "" {
			j.User = &a.User
		}
		switch {
		case a.Binary:
			j.Data, j.Encoding = appendJSONString(base64.StdEncoding.EncodeToString(a.Payload)), "base64"
		case a.Text:
			j.Data, j.Encoding = appendJSONString(string(a.Payload)), "text"
		}
		list = append(list, j)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func appendJSONString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a Go string always marshals
	return b
}

// DeliverRequest queues a request for a subscriber (broker.Responder):
// in envelope mode with its id, to be answered; a raw subscriber takes it
// as a message, and cannot answer.
// A presence watcher (?presence=1) is an observer, a dashboard: it gets
// no requests.
func (c *conn) DeliverRequest(m *broker.Message, id string) bool {
	if c.pattern != patternSub || c.opts.presence {
		return false
	}
	if !c.opts.envelope {
		c.enqueue(outFrame{typ: frameType(m), data: m.Payload, accepted: m.Time.UnixNano()})
		return false
	}
	c.replies.add(id, c.s.broker)
	c.enqueue(outFrame{typ: websocket.MessageText, data: m.RequestEnvelope(id), accepted: m.Time.UnixNano()})
	return true
}

// replyFrame is {"reply":ID,"data":…,"encoding":"text"|"base64"}.
type replyFrame struct {
	Reply    *string         `json:"reply"`
	Data     json.RawMessage `json:"data"`
	Encoding string          `json:"encoding"`
}

// answer handles a frame a subscriber sent: a reply frame answers a
// request it received; anything else is ignored, as it always was.
func (c *conn) answer(data []byte) {
	var f replyFrame
	if json.Unmarshal(data, &f) != nil || f.Reply == nil {
		return
	}
	id := *f.Reply
	refuse := func(status int, code, msg string) {
		c.sendError(&apiError{Status: status, Code: code, Topic: string(c.topic), Message: msg})
	}
	a := broker.Answer{User: c.user(), Topic: c.topic}
	switch f.Encoding {
	case "":
		if len(f.Data) == 0 {
			refuse(http.StatusBadRequest, "frame", "a reply frame needs data: {\"reply\":ID,\"data\":…}")
			return
		}
		a.Payload = f.Data
	case "text", "base64":
		var s string
		if json.Unmarshal(f.Data, &s) != nil {
			refuse(http.StatusBadRequest, "frame", "encoding "+f.Encoding+": data must be a string")
			return
		}
		a.Payload, a.Text = []byte(s), true
		if f.Encoding == "base64" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				refuse(http.StatusBadRequest, "frame", "encoding base64: "+err.Error())
				return
			}
			a.Payload, a.Text, a.Binary = b, false, true
		}
	default:
		refuse(http.StatusBadRequest, "frame", strconv.Quote(f.Encoding)+": encoding must be text or base64, or absent for JSON")
		return
	}
	if !c.replies.take(id) {
		refuse(http.StatusNotFound, "unknown_request",
			fmt.Sprintf("request %q was not sent to this connection, or it answered it already", id))
		return
	}
	switch err := c.s.broker.Reply(id, a); {
	case errors.Is(err, broker.ErrRequestEnded):
		refuse(http.StatusGone, "request_ended",
			fmt.Sprintf("request %q ended (it timed out, or another responder answered first): the answer was dropped", id))
		return
	case err != nil:
		// The requester is on another broker, and the cluster is cut off.
		c.sendError(apiErrorFor(err, c.topic))
		return
	}
	c.msgsIn.Add(1)
}

// watchRequests adds the request/reply figures to the metrics.
func (s *Server) watchRequests() {
	s.metrics.Gauge("mercury_requests_pending", "Requests (POST /req) waiting for answers.",
		func() float64 { return float64(s.broker.PendingRequests()) })
	s.metrics.Counter("mercury_request_late_answers_total", "Answers that came after their request ended (timed out or already answered), dropped.",
		func() float64 { return float64(s.broker.LateAnswers()) })
}
