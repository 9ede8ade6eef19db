package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
)

// Buses is what the server knows of the buses: their policies and their
// schemas. It is immutable; a reload swaps the whole in one step, so a
// message is checked against either the old buses or the new ones, never
// a mix, and open connections never notice.
type Buses struct {
	Policies *broker.Policies
	Schemas  *schema.Registry
}

// ErrNoReload is returned by Reload on a server that has no way to reload
// (started without a config file).
var ErrNoReload = errors.New("web: started without a config file: there is nothing to reload")

// currentBuses returns the buses in force.
func (s *Server) currentBuses() *Buses {
	if b := s.buses.Load(); b != nil {
		return b
	}
	return &noBuses
}

var noBuses Buses

// Reload asks Options.Reload for new buses and puts them in force, in the
// broker (history, queues) and here (schemas). When it fails the buses in
// force stay as they were; the error says why.
func (s *Server) Reload() (*Buses, error) {
	if s.opts.Reload == nil {
		return nil, ErrNoReload
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	b, err := s.opts.Reload()
	if err != nil {
		s.log.Error("reload failed; the buses in force are kept", "err", err)
		return nil, err
	}
	if b == nil {
		b = &Buses{}
	}
	if err := s.broker.SetPolicies(b.Policies); err != nil {
		s.log.Error("reload failed; the buses in force are kept", "err", err)
		return nil, err
	}
	s.buses.Store(b)
	s.log.Info("reloaded", "buses", b.String())
	return b, nil
}

// validate checks m against the schema of its bus, if it has one.
func (s *Server) validate(m *broker.Message) *apiError {
	b := s.currentBuses()
	pol := b.Policies.Lookup(m.Topic)
	if pol.Bus == "" {
		return nil
	}
	ref := b.Schemas.ValidateDepth(string(pol.Bus), string(m.Topic), m.Payload, m.Binary, s.opts.MaxJSONDepth)
	if ref == nil {
		return nil
	}
	return &apiError{Status: http.StatusUnprocessableEntity, Code: ref.Code, Topic: string(m.Topic),
		Bus: string(ref.Bus), Message: ref.Message, Details: ref.Details}
}

// String describes b for logs.
func (b *Buses) String() string {
	return fmt.Sprintf("%d buses, %d schemas", len(b.Policies.All()), len(b.Schemas.Buses()))
}
