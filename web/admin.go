package web

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/mercury-broker/mercury/web/auth"
)

// adminRoutes mounts the admin API (/api/…) in one group: every route in
// it needs an admin right. A route about one topic checks the grant's
// admin right on it, and answers as for a missing thing when there is
// none (a limited admin must not learn others' topics); a route about the
// whole broker needs admin on everything: r.With(s.requireAdminAll).
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
	return s.guard(r)
}

// requireAdmin lets through requests whose credential has an admin right
// on at least one topic, with their grant in the context. (The origin was
// checked by the guard.)
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, aerr := s.authenticate(r)
		if aerr != nil {
			s.refused(refusedRights, aerr, r.RemoteAddr, nil).write(w)
			return
		}
		if !g.Rights.Any(auth.Admin) {
			// Name the topic the request is about, when it says one.
			topic, err := s.opts.Topics.Parse(r.URL.Query().Get("topic"))
			if err != nil {
				topic = ""
			}
			s.refused(refusedRights, authorize(g, auth.Admin, topic), r.RemoteAddr, nil).write(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(withGrant(r.Context(), g)))
	})
}

// AdminOnly serves h to those with admin on everything, behind the same
// guard as the broker's routes (Host, Origin): for the profiler.
func (s *Server) AdminOnly(h http.Handler) http.Handler {
	return s.guard(s.requireAdmin(s.requireAdminAll(h)))
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

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}
