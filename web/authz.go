package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
)

// Credentials travel in the Authorization header ("Bearer <token>"), in
// the query (?token=, for browsers, which cannot set headers on a
// WebSocket), or as a WebSocket subprotocol "mercury.token.<token>". The
// token subprotocol is never the one negotiated: a client offering it
// also offers mercury.v1 (envelope mode) or mercury.raw (raw frames),
// and the server picks one of those.
const (
	subprotocolTokenPrefix = "mercury.token."
	subprotocolRaw         = "mercury.raw"
)

// everyone is the grant of every client of a server without an
// Authenticator: a broker on loopback, or started with --allow-anonymous.
var everyone = &auth.Grant{Kind: auth.KindAnonymous, Rights: auth.AllRights()}

// SetAuth puts a in force for new connections and requests; nil allows
// everything. Open connections keep the grant they have.
func (s *Server) SetAuth(a *auth.Authenticator) { s.auth.Store(a) }

// credentialOf returns the credential a request carries, "" for none.
// Two different credentials are refused: the client must say which.
func credentialOf(r *http.Request) (string, *apiError) {
	var found []string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
			return "", &apiError{Status: http.StatusUnauthorized, Code: auth.CodeInvalid,
				Message: "Authorization header: want Bearer <token or API key>"}
		}
		found = append(found, strings.TrimSpace(cred))
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if cred, ok := strings.CutPrefix(strings.TrimSpace(p), subprotocolTokenPrefix); ok && cred != "" {
				found = append(found, cred)
			}
		}
	}
	if q := r.URL.Query(); q.Has("token") {
		found = append(found, q.Get("token"))
	}
	if len(found) == 0 {
		return "", nil
	}
	for _, c := range found[1:] {
		if c != found[0] {
			return "", &apiError{Status: http.StatusBadRequest, Code: auth.CodeInvalid,
				Message: "two different credentials: send one, in the Authorization header, ?token= or the mercury.token. subprotocol"}
		}
	}
	return found[0], nil
}

// authenticate returns the grant of a request's credential.
func (s *Server) authenticate(r *http.Request) (*auth.Grant, *apiError) {
	a := s.auth.Load()
	if a == nil {
		return everyone, nil
	}
	cred, aerr := credentialOf(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.verify(a, cred)
}

// verify turns a credential into a grant, or a 401.
func (s *Server) verify(a *auth.Authenticator, cred string) (*auth.Grant, *apiError) {
	if a == nil {
		return everyone, nil
	}
	g, err := a.Authenticate(cred)
	if err != nil {
		var ce *auth.CredentialError
		if errors.As(err, &ce) {
			return nil, &apiError{Status: http.StatusUnauthorized, Code: ce.Code, Message: ce.Msg}
		}
		return nil, &apiError{Status: http.StatusUnauthorized, Code: auth.CodeInvalid, Message: err.Error()}
	}
	return g, nil
}

// authorize checks that g allows action a on topic t ("" for an operation
// on no topic in particular). A refusal names both; it is a 401 for a
// client that sent no credential (it may need one), a 403 otherwise.
func authorize(g *auth.Grant, a auth.Action, t broker.Topic) *apiError {
	if g.Rights.Allows(a, t) {
		return nil
	}
	what := fmt.Sprintf("%s on %s", a, t)
	if t == "" {
		what = fmt.Sprintf("%s on everything", a)
	}
	e := &apiError{Status: http.StatusForbidden, Code: "forbidden", Action: a.String(), Topic: string(t)}
	switch g.Kind {
	case auth.KindAnonymous:
		e.Status, e.Code = http.StatusUnauthorized, auth.CodeMissing
		if g.Rights.Any(a) {
			e.Message = fmt.Sprintf("%s is not allowed without a token: anonymous clients have %s", what, g.Rights.Describe(a))
		} else {
			e.Message = fmt.Sprintf("%s needs a token or an API key", what)
		}
	case auth.KindAPIKey:
		e.Message = fmt.Sprintf("%s is not allowed: API key %q has %s", what, g.Subject, g.Rights.Describe(a))
	default:
		e.Message = fmt.Sprintf("%s is not allowed: the token of %q has %s", what, g.Subject, g.Rights.Describe(a))
	}
	return e
}

// actionOf returns the action of a route.
func actionOf(p pattern) auth.Action {
	return [...]auth.Action{patternSub: auth.Sub, patternPub: auth.Pub, patternBus: auth.Bus,
		patternPush: auth.Push, patternPull: auth.Pull}[p]
}

// authorizeRequest authenticates r and checks it may do a on t.
func (s *Server) authorizeRequest(r *http.Request, a auth.Action, t broker.Topic) (*auth.Grant, *apiError) {
	g, aerr := s.authenticate(r)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := authorize(g, a, t); aerr != nil {
		return nil, aerr
	}
	return g, nil
}

type grantKey struct{}

// withGrant returns ctx carrying g, for handlers behind a middleware that
// authenticated the request.
func withGrant(ctx context.Context, g *auth.Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

// grantOf returns the grant a middleware put in r's context.
func grantOf(r *http.Request) *auth.Grant {
	if g, ok := r.Context().Value(grantKey{}).(*auth.Grant); ok {
		return g
	}
	return &auth.Grant{Kind: auth.KindAnonymous} // nothing allowed
}
