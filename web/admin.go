package web

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// adminRoutes mounts the admin API (/api/…) in one group: every route in
// it needs an admin right. A route about one topic checks it with
// adminAllows(w, r, topic); a route about the whole broker needs admin on
// everything: register it with r.With(s.requireAdminAll).
//
// With Options.AdminSeparate the group is served by AdminHandler, on its
// own listener, and not on the main one.
func (s *Server) adminRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.requireAdmin)
		s.queueRoutes(r)
		s.busRoutes(r)
		s.opsRoutes(r)
	})
	r.Get("/api/openapi.json", serveOpenAPI) // a description, open to all
}

// AdminHandler serves the admin API alone (and /healthz), for a listener
// of its own (Options.AdminSeparate). The admin right is needed there too.
func (s *Server) AdminHandler() http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", healthz)
	s.adminRoutes(r)
	return r
}

// requireAdmin lets through requests from an allowed origin whose
// credential has an admin right on at least one topic, with their grant in
// the context.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.origin.allows(r) {
			http.Error(w, "Origin check failed", http.StatusUnauthorized)
			return
		}
		g, aerr := s.authenticate(r)
		if aerr != nil {
			aerr.write(w)
			return
		}
		if !g.Rights.Any(auth.Admin) {
			// Name the topic the request is about, when it says one.
			topic, err := s.opts.Topics.Parse(r.URL.Query().Get("topic"))
			if err != nil {
				topic = ""
			}
			authorize(g, auth.Admin, topic).write(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(withGrant(r.Context(), g)))
	})
}

// requireAdminAll lets through requests whose credential has admin on
// everything ("admin": true). Use it inside the admin group.
func (s *Server) requireAdminAll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if aerr := authorize(grantOf(r), auth.Admin, ""); aerr != nil {
			aerr.write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminAllows reports whether the request may administer topic; when not,
// it has answered 403.
func adminAllows(w http.ResponseWriter, r *http.Request, topic broker.Topic) bool {
	if aerr := authorize(grantOf(r), auth.Admin, topic); aerr != nil {
		aerr.write(w)
		return false
	}
	return true
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
