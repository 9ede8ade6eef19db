package web

import (
	"cmp"
	_ "embed"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/metrics"
)

// The operations part of the admin API: the overview, topics, connections
// (with a way to close one), and /metrics.
func (s *Server) opsRoutes(r chi.Router) {
	r.With(s.requireAdminAll).Get("/metrics", s.metrics.Handler().ServeHTTP)
	r.With(s.requireAdminAll).Get("/api/overview", s.handleOverview)
	r.Get("/api/topics", s.handleTopics)
	r.Get("/api/connections", s.handleConnections)
	r.Delete("/api/connections/{id}", s.handleCloseConnection)
}

// MetricsSnapshot reports the server's and the broker's counts
// (metrics.Source).
func (s *Server) MetricsSnapshot() metrics.Snapshot {
	byPattern := make(map[string]int, len(patterns)+1)
	for _, p := range patterns {
		byPattern[p.String()] = 0
	}
	s.mu.Lock()
	for c := range s.conns {
		byPattern[c.pattern.String()]++
	}
	byPattern["sse"] = len(s.streams)
	s.mu.Unlock()
	subs, _ := s.broker.Subscriptions()
	return metrics.Snapshot{
		Connections:   byPattern,
		Subscriptions: subs,
		Traffic:       s.broker.TrafficByBus(),
		Queues:        s.broker.Queues(),
		SlowConsumers: uint64(s.slowConsumers.Load()),
		Refusals:      s.refusals.byName(),
		MemoryHeld:    s.broker.MemoryUsed(),
		MemoryLimit:   s.broker.MaxMemory(),
	}
}

// Version is what /api/overview reports; the command sets it.
var Version = "dev"

type overview struct {
	Version     string    `json:"version"`
	Started     time.Time `json:"started"`
	Connections struct {
		Total     int            `json:"total"`
		ByPattern map[string]int `json:"by_pattern"`
	} `json:"connections"`
	Subscriptions      int               `json:"subscriptions"`
	Topics             int               `json:"topics"`
	MessagesIn         uint64            `json:"messages_in"`
	MessagesOut        uint64            `json:"messages_out"`
	InPerSecond        float64           `json:"in_per_second"`
	OutPerSecond       float64           `json:"out_per_second"`
	Refusals           map[string]uint64 `json:"refusals"`
	SlowConsumerCloses uint64            `json:"slow_consumer_closes"`
}

func (s *Server) handleOverview(w http.ResponseWriter, _ *http.Request) {
	snap := s.MetricsSnapshot()
	o := overview{Version: Version, Started: s.started, Subscriptions: snap.Subscriptions,
		Topics: len(s.broker.TopicStats("")), Refusals: snap.Refusals, SlowConsumerCloses: snap.SlowConsumers}
	o.Connections.ByPattern = snap.Connections
	for _, n := range snap.Connections {
		o.Connections.Total += n
	}
	for _, t := range snap.Traffic {
		o.MessagesIn += t.MessagesIn
		o.MessagesOut += t.MessagesOut
	}
	o.InPerSecond, o.OutPerSecond = s.rates.rates(time.Now(), o.MessagesIn, o.MessagesOut)
	writeJSON(w, http.StatusOK, o)
}

// rateSampler turns the totals the overview reads into rates over about
// the last ten seconds, from the samples its own requests leave: no
// goroutine, and a first request reports 0.
type rateSampler struct {
	mu      sync.Mutex
	samples []rateSample
}

type rateSample struct {
	at      time.Time
	in, out uint64
}

const rateSpan = 10 * time.Second

func (rs *rateSampler) rates(now time.Time, in, out uint64) (inRate, outRate float64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if n := len(rs.samples); n == 0 || now.Sub(rs.samples[n-1].at) >= time.Second {
		rs.samples = append(rs.samples, rateSample{now, in, out})
	}
	for len(rs.samples) > 2 && now.Sub(rs.samples[1].at) >= rateSpan {
		rs.samples = rs.samples[1:]
	}
	first := rs.samples[0]
	dt := now.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	return float64(in-first.in) / dt, float64(out-first.out) / dt
}

// handleTopics lists the topics the client may administer.
func (s *Server) handleTopics(w http.ResponseWriter, r *http.Request) {
	var prefix broker.Topic
	if raw := r.URL.Query().Get("prefix"); raw != "" {
		t, err := s.opts.Topics.Parse(raw)
		if err != nil {
			(&apiError{Status: http.StatusBadRequest, Code: "query", Topic: raw, Message: "prefix: " + err.Error()}).write(w)
			return
		}
		prefix = t
	}
	rights := grantOf(r).Rights
	topics := s.broker.TopicStats(prefix)
	shown := topics[:0]
	for _, t := range topics {
		if rights.Allows(auth.Admin, t.Topic) {
			shown = append(shown, t)
		}
	}
	writeJSON(w, http.StatusOK, shown)
}

type connectionJSON struct {
	ID      string    `json:"id"`
	Remote  string    `json:"remote"`
	Pattern string    `json:"pattern"`
	Topic   string    `json:"topic"`
	User    string    `json:"user,omitempty"`
	Since   time.Time `json:"since"`
	Queue   struct {
		Len int `json:"len"` // bytes waiting to be written
		Cap int `json:"cap"` // the outgoing queue's limit, bytes
	} `json:"queue"`
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
}

// handleConnections lists the WebSocket connections and event streams on
// topics the client may administer, oldest first.
func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request) {
	rights := grantOf(r).Rights
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if rights.Allows(auth.Admin, c.topic) {
			conns = append(conns, c)
		}
	}
	streams := make([]*sseStream, 0, len(s.streams))
	for st := range s.streams {
		if rights.Allows(auth.Admin, st.topic) {
			streams = append(streams, st)
		}
	}
	s.mu.Unlock()
	out := make([]connectionJSON, 0, len(conns)+len(streams))
	for _, st := range streams {
		cj := connectionJSON{ID: strconv.FormatUint(st.id, 10), Remote: st.remote, Pattern: "sse",
			Topic: string(st.topic), User: st.user, Since: st.opened, MessagesOut: st.sent.Load()}
		st.mu.Lock()
		cj.Queue.Len = st.bytes
		st.mu.Unlock()
		cj.Queue.Cap = s.opts.OutgoingQueue
		out = append(out, cj)
	}
	for _, c := range conns {
		cj := connectionJSON{ID: strconv.FormatUint(c.id, 10), Remote: c.remote, Pattern: c.pattern.String(),
			Topic: string(c.topic), User: c.user(), Since: c.opened,
			MessagesIn: c.msgsIn.Load(), MessagesOut: c.msgsOut.Load()}
		c.mu.Lock()
		cj.Queue.Len = c.outBytes
		c.mu.Unlock()
		cj.Queue.Cap = s.opts.OutgoingQueue
		out = append(out, cj)
	}
	sortConnections(out)
	writeJSON(w, http.StatusOK, out)
}

// closedByAdmin is the close reason of a connection closed through the API.
const closedByAdmin = "closed by an administrator"

func (s *Server) handleCloseConnection(w http.ResponseWriter, r *http.Request) {
	idText := chi.URLParam(r, "id")
	id, err := strconv.ParseUint(idText, 10, 64)
	var target *conn
	var stream *sseStream
	if err == nil {
		s.mu.Lock()
		for c := range s.conns {
			if c.id == id {
				target = c
				break
			}
		}
		for st := range s.streams {
			if st.id == id {
				stream = st
				break
			}
		}
		s.mu.Unlock()
	}
	// A connection out of the client's scope answers as a missing one:
	// its topic is not the client's to learn.
	rights := grantOf(r).Rights
	if stream != nil && !rights.Allows(auth.Admin, stream.topic) {
		stream = nil
	}
	if target != nil && !rights.Allows(auth.Admin, target.topic) {
		target = nil
	}
	if stream != nil {
		s.log.Info("event stream closed by an administrator", "id", stream.id, "remote", stream.remote,
			"topic", stream.topic, "by", grantOf(r).Subject)
		stream.once.Do(func() { close(stream.kill) })
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if target == nil {
		(&apiError{Status: http.StatusNotFound, Code: "no_connection",
			Message: "no connection " + strconv.Quote(idText) + ": it closed, the id is wrong, or it is not yours to administer (see GET /api/connections)"}).write(w)
		return
	}
	s.log.Info("connection closed by an administrator", "id", target.id, "remote", target.remote,
		"pattern", target.pattern.String(), "topic", target.topic, "by", grantOf(r).Subject)
	target.closeWith(websocket.StatusPolicyViolation, closedByAdmin)
	w.WriteHeader(http.StatusNoContent)
}

// user is the subject of the connection's credential, "" for none.
func (c *conn) user() string {
	if g := c.currentGrant(); g != nil {
		return g.Subject
	}
	return ""
}

func sortConnections(cs []connectionJSON) {
	slices.SortFunc(cs, func(a, b connectionJSON) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

//go:embed openapi.json
var openAPI []byte

// serveOpenAPI serves the description of the admin API.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
