package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// Presence: GET /presence/{topic} lists the subscriptions at or below
// {topic}; a subscriber in envelope mode with ?presence=1 receives their
// join and leave events as {"presence":{…}} frames.

// presenceJSON is one subscription on the wire. Remote and Conn are shown
// only to a client with the admin right on the topic.
type presenceJSON struct {
	Event  string    `json:"event,omitempty"` // join or leave; only in events
	Topic  string    `json:"topic"`
	User   *string   `json:"user"` // null: anonymous
	Since  time.Time `json:"since"`
	Node   string    `json:"node,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Conn   uint64    `json:"conn,omitempty"`
}

func toPresenceJSON(p broker.Presence, admin bool) presenceJSON {
	j := presenceJSON{Topic: string(p.Topic), Since: p.Since.UTC(), Node: p.Node}
	if p.User != "" {
		j.User = &p.User
	}
	if admin {
		j.Remote, j.Conn = p.Remote, p.Conn
	}
	return j
}

// routeTopic returns the topic of a request to /{route}/{topic}.
func (s *Server) routeTopic(route string, r *http.Request) (broker.Topic, *apiError) {
	raw := strings.TrimPrefix(r.URL.Path, "/"+route)
	if raw == "" || raw == "/" {
		return "", &apiError{Status: http.StatusNotFound, Code: "no_topic",
			Message: fmt.Sprintf("no topic: use /%s/<topic>, for example /%s/livesys/42", route, route)}
	}
	t, err := s.opts.Topics.Parse(raw)
	if err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Code: "topic", Topic: raw, Message: err.Error()}
	}
	return t, nil
}

// handlePresence serves GET /presence/{topic}: it needs the sub right on
// the topic.
func (s *Server) handlePresence(w http.ResponseWriter, r *http.Request) {
	topic, aerr := s.routeTopic("presence", r)
	if aerr != nil {
		aerr.write(w)
		return
	}
	g, aerr := s.authorizeRequest(r, auth.Sub, topic)
	if aerr != nil {
		s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w)
		return
	}
	list := make([]presenceJSON, 0)
	for _, p := range s.broker.Present(topic) {
		list = append(list, toPresenceJSON(p, g.Rights.Allows(auth.Admin, p.Topic)))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

// presenceFrame returns the frame of a presence event.
func presenceFrame(e broker.PresenceEvent) []byte {
	j := toPresenceJSON(e.Presence, false)
	j.Event = "leave"
	if e.Join {
		j.Event = "join"
	}
	b, err := json.Marshal(struct {
		Presence presenceJSON `json:"presence"`
	}{j})
	if err != nil {
		panic(err) // strings and a time: marshalling cannot fail
	}
	return b
}

// PresenceEvent queues a join or leave event (broker.PresenceWatcher).
// It counts against the outgoing queue like a message.
func (c *conn) PresenceEvent(e broker.PresenceEvent) {
	c.enqueue(outFrame{typ: websocket.MessageText, data: presenceFrame(e)})
}

// joinPresence announces a subscriber, and with ?presence=1 makes it watch
// the others; the returned function undoes both.
func (c *conn) joinPresence() (leave func()) {
	b := c.s.broker
	var stop func()
	if c.opts.presence {
		stop = b.WatchPresence(c.topic, c)
	}
	left := b.Join(broker.Presence{Topic: c.topic, User: c.user(), Since: c.opened, Conn: c.id, Remote: c.remote})
	return func() {
		left()
		if stop != nil {
			stop()
		}
	}
}

var _ broker.PresenceWatcher = (*conn)(nil)

// presenceNeedsEnvelope refuses ?presence=1 where its events could not be
// told from messages: on a raw socket, or another pattern than sub.
func presenceNeedsEnvelope(p pattern, o connOptions, topic broker.Topic) *apiError {
	if !o.presence || (p == patternSub && o.envelope) {
		return nil
	}
	return &apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic),
		Message: "presence=1 needs a subscriber in envelope mode (/sub/… with envelope=1 or the mercury.v1 subprotocol)"}
}

// PresenceEvent queues a join or leave event for an event stream
// (broker.PresenceWatcher); it counts against the stream's queue.
func (st *sseStream) PresenceEvent(e broker.PresenceEvent) {
	f := presenceFrame(e)
	st.mu.Lock()
	if st.overflow {
		st.mu.Unlock()
		return
	}
	if st.bytes > 0 && st.bytes+len(f) > st.limit {
		st.overflow = true
		st.queue, st.presence, st.bytes = nil, nil, 0
	} else {
		st.presence = append(st.presence, f)
		st.bytes += len(f)
	}
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// takePresence returns the waiting presence events, and releases their
// bytes: they are written with the messages taken with them.
func (st *sseStream) takePresence() [][]byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	events := st.presence
	st.presence = nil
	for _, f := range events {
		st.bytes = max(st.bytes-len(f), 0)
	}
	return events
}

// writePresence writes presence events, each named presence.
func writePresence(bw *bufio.Writer, events [][]byte) {
	for _, f := range events {
		bw.WriteString("event: presence\ndata: ")
		bw.Write(f)
		bw.WriteString("\n\n")
	}
}

// joinPresence announces an event stream's subscription, and with
// ?presence=1 makes it watch the others; the returned function undoes both.
func (st *sseStream) joinPresence(b *broker.Broker, watch bool) (leave func()) {
	var stop func()
	if watch {
		stop = b.WatchPresence(st.topic, st)
	}
	left := b.Join(broker.Presence{Topic: st.topic, User: st.user, Since: st.opened, Conn: st.id, Remote: st.remote})
	return func() {
		left()
		if stop != nil {
			stop()
		}
	}
}
