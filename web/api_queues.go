package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// The queue part of the admin API: queues with their depth, and dead
// letters to list, peek, requeue, pop and purge.
func (s *Server) queueRoutes(r chi.Router) {
	r.Get("/api/queues", func(w http.ResponseWriter, r *http.Request) {
		// Only the queues the client may administer.
		rights := grantOf(r).Rights
		queues := s.broker.Queues()
		shown := queues[:0]
		for _, q := range queues {
			if rights.Allows(auth.Admin, q.Topic) {
				shown = append(shown, q)
			}
		}
		writeJSON(w, http.StatusOK, shown)
	})
	r.Get("/api/queues/dead", s.withQueueTopic(func(w http.ResponseWriter, r *http.Request, topic broker.Topic) {
		dead, err := s.broker.DeadLetters(topic)
		if err != nil {
			apiErrorFor(err, topic).write(w)
			return
		}
		if idText := r.URL.Query().Get("id"); idText != "" {
			id, err := strconv.ParseUint(idText, 10, 64)
			if err != nil {
				(&apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic), Message: "id: want a message id"}).write(w)
				return
			}
			for _, dl := range dead {
				if dl.ID == id {
					writeJSON(w, http.StatusOK, deadLetterJSON(&dl))
					return
				}
			}
			apiErrorFor(broker.ErrNoDeadLetters, topic).write(w)
			return
		}
		out := make([]deadLetter, 0, len(dead))
		for i := range dead {
			out = append(out, deadLetterJSON(&dead[i]))
		}
		writeJSON(w, http.StatusOK, out)
	}))
	r.Post("/api/queues/dead/requeue", s.withQueueTopic(func(w http.ResponseWriter, r *http.Request, topic broker.Topic) {
		var id uint64
		if idText := r.URL.Query().Get("id"); idText != "" {
			var err error
			if id, err = strconv.ParseUint(idText, 10, 64); err != nil || id == 0 {
				(&apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic), Message: "id: want a message id"}).write(w)
				return
			}
		}
		n, err := s.broker.Requeue(topic, id)
		if err != nil {
			apiErrorFor(err, topic).write(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"requeued": n})
	}))
	r.Post("/api/queues/dead/pop", s.withQueueTopic(func(w http.ResponseWriter, _ *http.Request, topic broker.Topic) {
		dl, err := s.broker.PopDead(topic)
		if err != nil {
			apiErrorFor(err, topic).write(w)
			return
		}
		writeJSON(w, http.StatusOK, deadLetterJSON(dl))
	}))
	r.Delete("/api/queues/dead", s.withQueueTopic(func(w http.ResponseWriter, _ *http.Request, topic broker.Topic) {
		n, err := s.broker.PurgeDead(topic)
		if err != nil {
			apiErrorFor(err, topic).write(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"purged": n})
	}))
}

// withQueueTopic reads the ?topic= of a queue request.
func (s *Server) withQueueTopic(h func(http.ResponseWriter, *http.Request, broker.Topic)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.URL.Query().Get("topic")
		if raw == "" {
			(&apiError{Status: http.StatusBadRequest, Code: "query", Message: "topic: say which queue, e.g. ?topic=/jobs"}).write(w)
			return
		}
		topic, err := s.opts.Topics.Parse(raw)
		if err != nil {
			(&apiError{Status: http.StatusBadRequest, Code: "topic", Topic: raw, Message: err.Error()}).write(w)
			return
		}
		if !grantOf(r).Rights.Allows(auth.Admin, topic) {
			// Out of scope answers as a missing queue: whether it exists
			// is not the client's to learn.
			apiErrorFor(broker.ErrNoQueue, topic).write(w)
			return
		}
		h(w, r, topic)
	}
}

// deadLetter is a dead letter as the API shows it; message is in
// envelope form.
type deadLetter struct {
	ID        uint64          `json:"id"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	Died      time.Time       `json:"died"`
	Message   json.RawMessage `json:"message"`
}

func deadLetterJSON(dl *broker.DeadLetter) deadLetter {
	return deadLetter{ID: dl.ID, Attempts: dl.Attempts, LastError: dl.LastError, Died: dl.Died, Message: dl.Message.Envelope()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		(&apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "failed to encode the answer: " + err.Error()}).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
