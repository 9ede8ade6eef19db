package web

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/broker"
)

// busRoutes serves the buses API, in the admin group; these routes are
// about the whole broker: they need admin on everything.
func (s *Server) busRoutes(r chi.Router) {
	r = r.With(s.requireAdminAll)
	r.Get("/api/buses", s.handleBuses)
	r.Get("/api/buses/schema", s.handleBusSchema)
	r.Post("/api/reload", s.handleReload)
}

// busInfo is one bus in GET /api/buses.
type busInfo struct {
	Bus       string       `json:"bus"`
	Schema    string       `json:"schema,omitempty"`     // the schema's file name
	SchemaURL string       `json:"schema_url,omitempty"` // where to fetch it
	Documents []string     `json:"documents,omitempty"`  // the schema's files, the main one first
	History   *historyInfo `json:"history,omitempty"`
	Durable   bool         `json:"durable"`
	Queue     *queueInfo   `json:"queue,omitempty"`
}

type historyInfo struct {
	Messages int    `json:"messages,omitempty"`
	Age      string `json:"age,omitempty"`
}

type queueInfo struct {
	Limit       int    `json:"limit,omitempty"`
	MaxBytes    int64  `json:"max_bytes,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
	AckTimeout  string `json:"ack_timeout,omitempty"`
	TTL         string `json:"ttl,omitempty"`
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// describeBuses lists b's buses in order, as GET /api/buses shows them.
// Defaults are filled in (queueLimit is the broker's): what is shown is
// what the broker does.
func describeBuses(b *Buses, queueLimit int) []busInfo {
	out := []busInfo{}
	for _, p := range b.Policies.All() {
		info := busInfo{Bus: string(p.Bus), Durable: p.Durable}
		if docs := b.Schemas.Documents(string(p.Bus)); len(docs) > 0 {
			info.Schema = docs[0]
			info.SchemaURL = "/api/buses/schema?" + url.Values{"bus": {string(p.Bus)}}.Encode()
			info.Documents = docs
		}
		if h := p.EffectiveHistory(); h != (broker.History{}) {
			info.History = &historyInfo{Messages: h.Messages, Age: durationText(h.Age)}
		}
		if p.Queue != (broker.QueuePolicy{}) {
			q := p.Queue.WithDefaults(queueLimit)
			info.Queue = &queueInfo{Limit: q.Limit, MaxBytes: q.MaxBytes, MaxAttempts: q.MaxAttempts, AckTimeout: durationText(q.AckTimeout), TTL: durationText(q.TTL)}
		}
		out = append(out, info)
	}
	return out
}

// handleBuses lists the buses and their policies.
func (s *Server) handleBuses(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"buses": describeBuses(s.currentBuses(), s.broker.QueueLimit())})
}

// handleBusSchema serves the schema document of ?bus=, or with &file= one
// of the documents it references, so clients can fetch their contract.
func (s *Server) handleBusSchema(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("bus")
	if raw == "" {
		(&apiError{Status: http.StatusBadRequest, Code: "query", Message: "which bus? use /api/buses/schema?bus=/livesys"}).write(w)
		return
	}
	bus, err := broker.ParseTopic(raw)
	if err != nil {
		(&apiError{Status: http.StatusBadRequest, Code: "topic", Bus: raw, Message: err.Error()}).write(w)
		return
	}
	b := s.currentBuses()
	doc, ok := b.Schemas.Document(string(bus))
	if !ok {
		msg := "bus " + string(bus) + " has no schema"
		if b.Policies.Lookup(bus).Bus != bus {
			msg = "no bus " + string(bus) + " is declared"
		}
		(&apiError{Status: http.StatusNotFound, Code: "no_schema", Bus: string(bus), Message: msg + ": GET /api/buses lists the buses"}).write(w)
		return
	}
	if name := q.Get("file"); name != "" {
		if doc, ok = b.Schemas.Referenced(string(bus), name); !ok {
			(&apiError{Status: http.StatusNotFound, Code: "no_schema", Bus: string(bus),
				Message: "the schema of bus " + string(bus) + " uses no file " + name}).write(w)
			return
		}
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(doc)
}

// handleReload re-reads the config file and the schemas; on failure the
// buses in force stay, and the answer says why.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	b, err := s.Reload()
	switch {
	case errors.Is(err, ErrNoReload):
		(&apiError{Status: http.StatusConflict, Code: "no_config", Message: err.Error()}).write(w)
	case err != nil:
		(&apiError{Status: http.StatusInternalServerError, Code: "reload",
			Message: "reload failed, the running configuration is kept: " + err.Error()}).write(w)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "buses": describeBuses(b, s.broker.QueueLimit())})
	}
}
