package web

import (
	"fmt"
	"net/http"
)

// handleReady answers /readyz: 200 while the broker can accept messages
// (while NATS is connected, for a cluster; while the durable store works,
// when there is one), 503 with the reason otherwise, so a load balancer
// sends clients elsewhere.
func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	down := s.shutdown
	s.mu.Unlock()
	if down {
		(&apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: errShuttingDown.Error()}).write(w)
		return
	}
	if err := s.broker.Ready(); err != nil {
		(&apiError{Status: http.StatusServiceUnavailable, Code: "cluster_unavailable", Message: err.Error()}).write(w)
		return
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			(&apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: err.Error()}).write(w)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ready")
}
