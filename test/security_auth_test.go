package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

// authBroker is a broker with tokens (HS256, RS256, ES256, EdDSA), an API
// key and anonymous rights configured.
type authBroker struct {
	*brokerProc
	keys   *authtest.Keys
	apiKey string // rights: push and pull on /jobs, admin on everything
	config string
}

func startAuthBroker(t *testing.T, args ...string) *authBroker {
	t.Helper()
	k := authtest.NewKeys(t)
	apiKey := auth.GenerateKey()
	hash, err := auth.HashKey(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "mercury.yaml")
	yaml := fmt.Sprintf(`auth:
  jwt:
    secret_file: %s
    keys: [%s, %s, %s]
    issuer: %s
    audience: %s
  api_keys:
    - name: worker
      hash: "%s"
      rights: {push: [/jobs], pull: [/jobs], admin: true}
  anonymous:
    sub: [/public]
`, k.Files.Secret, k.Files.RSA, k.Files.EC, k.Files.Ed, k.Issuer, k.Audience, hash)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, append([]string{"--config", config}, args...)...)
	return &authBroker{brokerProc: b, keys: k, apiKey: apiKey, config: config}
}

// agentRights are the rights of agent tokens: everything under their own
// number, per action.
var agentRights = map[string]any{
	"sub":   []any{"/livesys/{sub}"},
	"pub":   []any{"/livesys/{sub}/status"},
	"bus":   []any{"/rooms/{sub}"},
	"push":  []any{"/jobs/{sub}"},
	"pull":  []any{"/jobs/{sub}"},
	"admin": []any{"/jobs/{sub}"},
}

// attempt is one try of an action with a credential, by one transport.
type attempt struct {
	action, topic, cred string
	via                 string // header, query, subprotocol (WebSocket) — POST and admin: header or query
	post                bool   // pub, bus, push by HTTP POST
}

// outcome is what the broker answered: 101/200 or the refusal.
type outcome struct {
	status int
	err    *client.APIError
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%d %s %s %s: %s", o.status, o.err.Code, o.err.Action, o.err.Topic, o.err.Message)
	}
	return fmt.Sprint(o.status)
}

func (ab *authBroker) try(t *testing.T, a attempt) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := url.Values{}
	h := http.Header{}
	var subprotocols []string
	switch a.via {
	case "header":
		h.Set("Authorization", "Bearer "+a.cred)
	case "query":
		q.Set("token", a.cred)
	case "subprotocol":
		subprotocols = []string{"mercury.v1", "mercury.token." + a.cred}
	case "none":
	default:
		t.Fatalf("via %q", a.via)
	}
	if a.action == "admin" {
		q.Set("topic", a.topic)
		u := ab.HTTP + "/api/queues/dead?" + q.Encode()
		if a.topic == "" {
			u = ab.HTTP + "/api/buses?" + q.Encode()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body json.RawMessage
		json.NewDecoder(resp.Body).Decode(&body)
		return outcome{status: resp.StatusCode, err: client.ParseError(body)}
	}
	if a.post {
		h.Set("Accept", "application/json")
		resp, err := client.Post(ctx, nil, client.URL(ab.HTTP, a.action, a.topic, q), "", []byte(`{"n":1}`), h)
		if err != nil {
			t.Fatal(err)
		}
		return outcome{status: resp.Status, err: client.ParseError(resp.Body)}
	}
	if a.via != "subprotocol" {
		q.Set("envelope", "1")
	}
	c, err := client.Dial(ctx, client.URL(ab.WS, a.action, a.topic, q), &client.Options{Header: h, Subprotocols: subprotocols})
	if err != nil {
		he, ok := err.(*client.HandshakeError)
		if !ok {
			t.Fatalf("dial: %v", err)
		}
		return outcome{status: he.Status, err: he.API()}
	}
	defer c.CloseNow()
	if a.via == "subprotocol" && c.Subprotocol() != "mercury.v1" {
		t.Fatalf("negotiated subprotocol %q, want mercury.v1 (never the token)", c.Subprotocol())
	}
	if a.action == "pub" || a.action == "bus" || a.action == "push" {
		// A publisher in envelope mode gets an answer per frame.
		if err := c.WriteText(ctx, `{"n":1}`); err != nil {
			t.Fatal(err)
		}
		f, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !strings.HasPrefix(string(f.Data), `{"ok":`) {
			t.Fatalf("published frame answered %s", f.Data)
		}
	}
	return outcome{status: http.StatusSwitchingProtocols}
}

// expectAllowed fails unless the broker let the attempt through.
func expectAllowed(t *testing.T, name string, o outcome) {
	t.Helper()
	if o.status != http.StatusSwitchingProtocols && o.status != http.StatusOK {
		t.Errorf("%s: %v, want it allowed", name, o)
	}
}

// expectRefused fails unless the broker refused with status and code,
// naming the action and topic when rights refused it.
func expectRefused(t *testing.T, name string, o outcome, status int, code string, a attempt) {
	t.Helper()
	if o.status != status || o.err == nil || o.err.Code != code || o.err.Message == "" {
		t.Errorf("%s: %v, want %d %s", name, o, status, code)
		return
	}
	if code == "forbidden" || code == auth.CodeMissing {
		if o.err.Action != a.action || o.err.Topic != a.topic ||
			!strings.Contains(o.err.Message, a.action+" on ") {
			t.Errorf("%s: %v: the refusal does not name the action and topic", name, o)
		}
	}
}

// matrixTopics are, per action, a topic the agent-42 token allows, one it
// does not, and one above its right.
var matrixTopics = map[string][3]string{
	"sub":   {"/livesys/42/cmd", "/other/42", "/livesys"},
	"pub":   {"/livesys/42/status", "/livesys/42/cmd", "/livesys/42"},
	"bus":   {"/rooms/42", "/rooms/43", "/rooms"},
	"push":  {"/jobs/42", "/jobs/43", "/jobs"},
	"pull":  {"/jobs/42/high", "/jobs/4", "/jobs"},
	"admin": {"/jobs/42", "/jobs/43", "/jobs"},
}

func TestRightsMatrix(t *testing.T) {
	ab := startAuthBroker(t)
	k := ab.keys
	// The queue the admin attempts look at.
	post(t, ab.HTTP+"/push/jobs/42?token="+ab.apiKey, "one job")

	good := func(alg string) string { return k.Sign(t, alg, k.Claims("42", time.Hour, agentRights), "") }
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := k.Claims("42", time.Hour, agentRights)
		edit(c)
		return c
	}
	other := authtest.NewKeys(t)
	bad := []struct {
		name, token, code string
	}{
		{"expired", k.Sign(t, "RS256", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), ""), auth.CodeExpired},
		{"not yet valid", k.Sign(t, "ES256", claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), ""), auth.CodeNotYetValid},
		{"wrong key", other.Sign(t, "EdDSA", k.Claims("42", time.Hour, agentRights), ""), auth.CodeInvalid},
		{"wrong issuer", k.Sign(t, "HS256", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ""), auth.CodeInvalid},
		{"wrong audience", k.Sign(t, "HS256", claims(func(c jwt.MapClaims) { c["aud"] = "other" }), ""), auth.CodeInvalid},
		{"alg none", authtest.AlgNone(t, k.Claims("42", time.Hour, agentRights)), auth.CodeInvalid},
		{"algorithm confusion", k.Confused(t, k.Claims("42", time.Hour, agentRights)), auth.CodeInvalid},
		{"unsafe placeholder claim", k.Sign(t, "HS256", claims(func(c jwt.MapClaims) { c["sub"] = "42/../../" }), ""), auth.CodeInvalid},
	}

	for _, action := range []string{"sub", "pub", "bus", "push", "pull", "admin"} {
		topics := matrixTopics[action]
		vias := []string{"header", "query", "subprotocol"}
		posts := []bool{false}
		switch action {
		case "pub", "bus", "push":
			posts = []bool{false, true}
		case "admin":
			vias = []string{"header", "query"}
		}
		for _, isPost := range posts {
			for _, via := range vias {
				if isPost && via == "subprotocol" {
					continue
				}
				name := func(what string) string {
					n := action + " " + what + " via " + via
					if isPost {
						n = "POST " + n
					}
					return n
				}
				at := func(topic, cred string) attempt {
					return attempt{action: action, topic: topic, cred: cred, via: via, post: isPost}
				}
				for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
					expectAllowed(t, name("allowed "+alg), ab.try(t, at(topics[0], good(alg))))
				}
				// A queue out of an admin's scope answers as a missing
				// one: its existence is not the admin's to learn.
				status, code := http.StatusForbidden, "forbidden"
				if action == "admin" {
					status, code = http.StatusNotFound, "no_queue"
				}
				a := at(topics[1], good("EdDSA"))
				expectRefused(t, name("refused"), ab.try(t, a), status, code, a)
				a = at(topics[2], good("RS256"))
				expectRefused(t, name("above rights"), ab.try(t, a), status, code, a)
				for _, b := range bad {
					a := at(topics[0], b.token)
					expectRefused(t, name(b.name), ab.try(t, a), http.StatusUnauthorized, b.code, a)
				}
			}
		}
	}
	// Admin on a topic is not admin on the broker.
	a := attempt{action: "admin", topic: "", cred: good("HS256"), via: "header"}
	if o := ab.try(t, a); o.status != http.StatusForbidden || o.err == nil || !strings.Contains(o.err.Message, "admin on everything is not allowed") {
		t.Errorf("GET /api/buses with admin on /jobs/42: %v", o)
	}
}

func TestAPIKeysAndAnonymousRights(t *testing.T) {
	ab := startAuthBroker(t)
	for _, via := range []string{"header", "query", "subprotocol"} {
		expectAllowed(t, "API key push "+via, ab.try(t, attempt{action: "push", topic: "/jobs/a", cred: ab.apiKey, via: via}))
		expectAllowed(t, "API key pull "+via, ab.try(t, attempt{action: "pull", topic: "/jobs/a", cred: ab.apiKey, via: via}))
		a := attempt{action: "sub", topic: "/jobs/a", cred: ab.apiKey, via: via}
		o := ab.try(t, a)
		expectRefused(t, "API key sub "+via, o, http.StatusForbidden, "forbidden", a)
		if o.err != nil && !strings.Contains(o.err.Message, `API key "worker" has no sub right`) {
			t.Errorf("refusal does not name the key: %v", o)
		}
		a = attempt{action: "push", topic: "/jobs/a", cred: auth.GenerateKey(), via: via}
		expectRefused(t, "unknown API key "+via, ab.try(t, a), http.StatusUnauthorized, auth.CodeUnknownKey, a)
	}
	expectAllowed(t, "API key admin on everything", ab.try(t, attempt{action: "admin", topic: "", cred: ab.apiKey, via: "header"}))
	expectAllowed(t, "API key POST push", ab.try(t, attempt{action: "push", topic: "/jobs/b", cred: ab.apiKey, via: "query", post: true}))

	// Without a credential: the anonymous rights, and 401 beyond them.
	expectAllowed(t, "anonymous sub /public/news", ab.try(t, attempt{action: "sub", topic: "/public/news", via: "none"}))
	for _, a := range []attempt{
		{action: "sub", topic: "/private", via: "none"},
		{action: "pub", topic: "/public", via: "none"},
		{action: "pub", topic: "/public", via: "none", post: true},
		{action: "admin", topic: "/jobs", via: "none"},
	} {
		expectRefused(t, "anonymous "+a.action+" "+a.topic, ab.try(t, a), http.StatusUnauthorized, auth.CodeMissing, a)
	}
	// Server-Sent Events follow the same rights.
	req, _ := http.NewRequest(http.MethodGet, ab.HTTP+"/sub/private", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous SSE on /private: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestTokenExpiryClosesWith4401AndRefreshKeepsItOpen(t *testing.T) {
	ab := startAuthBroker(t)
	k := ab.keys
	short := func(d time.Duration, rights map[string]any) string {
		return k.Sign(t, "EdDSA", k.Claims("42", d, rights), "")
	}
	// Raw mode: closed when the token expires.
	raw := dial(t, ab.WS+"/sub/livesys/42", &client.Options{Token: short(2*time.Second, agentRights)})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := raw.Read(ctx); client.CloseStatus(err) != 4401 || client.CloseReason(err) != "token expired" {
		t.Fatalf("raw subscriber: %v, want close 4401 token expired", err)
	}

	// Envelope mode: a fresh token before expiry keeps the connection.
	env := dial(t, ab.WS+"/sub/livesys/42?envelope=1", &client.Options{Token: short(2*time.Second, agentRights)})
	if err := env.WriteText(ctx, `{"$token":"not.a.token"}`); err != nil {
		t.Fatal(err)
	}
	if e := client.ParseError([]byte(readText(t, env))); e == nil || e.Code != auth.CodeInvalid {
		t.Fatalf("bad token frame answered %v", e)
	}
	if err := env.WriteText(ctx, fmt.Sprintf(`{"$token":%q}`, short(time.Hour, agentRights))); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, env); got != `{"ok":"token"}` {
		t.Fatalf("token frame answered %s", got)
	}
	time.Sleep(3 * time.Second) // past the first token's expiry
	post(t, ab.HTTP+"/pub/livesys/42?token="+short(time.Hour, map[string]any{"pub": true}), "still here")
	if got := readText(t, env); !strings.Contains(got, `"data":"still here"`) {
		t.Fatalf("after refresh: %s", got)
	}
	// A new token that does not cover the topic closes the connection.
	if err := env.WriteText(ctx, fmt.Sprintf(`{"$token":%q}`, short(time.Hour, map[string]any{"sub": []any{"/elsewhere"}}))); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Read(ctx); client.CloseStatus(err) != 4403 || !strings.Contains(client.CloseReason(err), "no longer allows sub on /livesys/42") {
		t.Fatalf("narrower token: %v, want close 4403", err)
	}

	// On a publishing socket in envelope mode "$token" is reserved; in raw
	// mode it is an ordinary message.
	ctl := dial(t, ab.WS+"/sub/livesys/42", &client.Options{Token: short(time.Hour, agentRights)})
	pubEnv := dial(t, ab.WS+"/pub/livesys/42/status?envelope=1", &client.Options{Token: short(time.Hour, agentRights)})
	pubRaw := dial(t, ab.WS+"/pub/livesys/42/status", &client.Options{Token: short(time.Hour, agentRights)})
	pubEnv.WriteText(ctx, fmt.Sprintf(`{"$token":%q}`, short(time.Hour, agentRights)))
	if got := readText(t, pubEnv); got != `{"ok":"token"}` {
		t.Fatalf("publisher's token frame answered %s", got)
	}
	pubRaw.WriteText(ctx, `{"$token":"raw payload"}`)
	if got := readText(t, ctl); got != `{"$token":"raw payload"}` {
		t.Fatalf("subscriber got %s, want the raw publisher's message (and never the token frame)", got)
	}
}
