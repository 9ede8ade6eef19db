package web

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

func testAuth(t *testing.T, k *authtest.Keys) *auth.Authenticator {
	t.Helper()
	secret, err := auth.LoadSecretFile(k.Files.Secret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Keys: []*auth.Key{secret}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{JWT: v})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Every message is checked against the sender's rights, whatever way it
// came in: accept is the one way in.
func TestAcceptChecksRightsOfEveryMessage(t *testing.T) {
	ts := startServer(t, Options{})
	spec, _ := auth.ParseSpec(map[string]any{"pub": []any{"/a"}})
	rights, _ := spec.Expand(nil)
	g := &auth.Grant{Kind: auth.KindToken, Subject: "7", Rights: rights}
	if aerr := ts.accept(patternPub, &broker.Message{Topic: "/a/b", Payload: []byte("x")}, nil, connOptions{}, g); aerr != nil {
		t.Fatalf("allowed message refused: %v", aerr)
	}
	for _, p := range []pattern{patternBus, patternPush} {
		aerr := ts.accept(p, &broker.Message{Topic: "/a/b", Payload: []byte("x")}, nil, connOptions{}, g)
		if aerr == nil || aerr.Status != 403 || aerr.Action != p.String() || aerr.Topic != "/a/b" ||
			aerr.Message != p.String()+` on /a/b is not allowed: the token of "7" has no `+p.String()+" right" {
			t.Errorf("%s: %+v", p, aerr)
		}
	}
	if aerr := ts.accept(patternPub, &broker.Message{Topic: "/ab", Payload: []byte("x")}, nil, connOptions{}, g); aerr == nil {
		t.Error("/ab published with a right on /a")
	}
}

func TestTokenFramesOnASubscriber(t *testing.T) {
	k := authtest.NewKeys(t)
	ts := startServer(t, Options{Auth: testAuth(t, k)})
	tok := func(d time.Duration, rights map[string]any) string { return k.Sign(t, "HS256", jwt(k, d, rights), "") }
	all := map[string]any{"sub": true, "pub": true}
	sub := ts.dialURL(t, ts.ws+"/sub/x?envelope=1", &client.Options{Token: tok(time.Hour, all)})
	sub.send(t, `{"$token":5}`)
	if e := client.ParseError([]byte(sub.nextText(t))); e == nil || e.Code != "frame" || !strings.Contains(e.Message, `want {"$token":"<token or API key>"}`) {
		t.Fatalf("malformed token frame: %v", e)
	}
	sub.send(t, `{"$token":"`+tok(-time.Minute, all)+`"}`)
	if e := client.ParseError([]byte(sub.nextText(t))); e == nil || e.Code != auth.CodeExpired {
		t.Fatalf("expired token frame: %v", e)
	}
	sub.send(t, `{"$token":"`+tok(time.Hour, all)+`"}`)
	if got := sub.nextText(t); got != `{"ok":"token"}` {
		t.Fatalf("got %s", got)
	}
	// A raw subscriber's frames are ignored, "$token" or not.
	raw := ts.dialURL(t, ts.ws+"/sub/x", &client.Options{Token: tok(time.Hour, all)})
	raw.send(t, `{"$token":"`+tok(time.Hour, all)+`"}`)
	raw.nothing(t)
	// Without auth there is nothing to refresh, but the frame is answered.
	open := startServer(t, Options{})
	p := open.dialURL(t, open.ws+"/sub/x?envelope=1", nil)
	p.send(t, `{"$token":"anything"}`)
	if got := p.nextText(t); got != `{"ok":"token"}` {
		t.Fatalf("no auth: %s", got)
	}
}

func jwt(k *authtest.Keys, d time.Duration, rights map[string]any) map[string]any {
	return k.Claims("7", d, rights)
}

func TestCredentialPlaces(t *testing.T) {
	k := authtest.NewKeys(t)
	ts := startServer(t, Options{Auth: testAuth(t, k)})
	a := k.Sign(t, "HS256", k.Claims("7", time.Hour, map[string]any{"sub": true}), "")
	b := k.Sign(t, "HS256", k.Claims("8", time.Hour, map[string]any{"sub": true}), "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct {
		name   string
		url    string
		header http.Header
		protos []string
		want   int
	}{
		{"header", "/sub/x", http.Header{"Authorization": {"Bearer " + a}}, nil, 101},
		{"lower-case scheme", "/sub/x", http.Header{"Authorization": {"bearer " + a}}, nil, 101},
		{"query", "/sub/x?token=" + a, nil, nil, 101},
		{"subprotocol", "/sub/x", nil, []string{"mercury.raw", "mercury.token." + a}, 101},
		{"the same twice", "/sub/x?token=" + a, http.Header{"Authorization": {"Bearer " + a}}, nil, 101},
		{"two different", "/sub/x?token=" + b, http.Header{"Authorization": {"Bearer " + a}}, nil, 400},
		{"basic auth", "/sub/x", http.Header{"Authorization": {"Basic dTpw"}}, nil, 401},
		{"none", "/sub/x", nil, nil, 401},
	} {
		c2, err := client.Dial(ctx, ts.ws+c.url, &client.Options{Header: c.header, Subprotocols: c.protos})
		got := 101
		if err != nil {
			he, ok := err.(*client.HandshakeError)
			if !ok {
				t.Fatalf("%s: %v", c.name, err)
			}
			got = he.Status
		} else {
			if strings.HasPrefix(c2.Subprotocol(), "mercury.token.") {
				t.Errorf("%s: the token was negotiated as the subprotocol", c.name)
			}
			c2.CloseNow()
		}
		if got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestEventStreamEndsWhenItsTokenExpires(t *testing.T) {
	k := authtest.NewKeys(t)
	ts := startServer(t, Options{Auth: testAuth(t, k)})
	tok := k.Sign(t, "HS256", k.Claims("7", 2*time.Second, map[string]any{"sub": []any{"/x"}}), "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.http.URL+"/sub/x?token="+tok, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body) // ends when the broker ends the stream
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "event: error\ndata: {\"error\":{\"code\":\"token_expired\",\"topic\":\"/x\",\"message\":\"token expired\"}}") {
		t.Fatalf("stream: %q", body)
	}
	// Refused above its rights, with the action and topic named.
	tok = k.Sign(t, "HS256", k.Claims("7", time.Hour, map[string]any{"sub": []any{"/x"}}), "")
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, ts.http.URL+"/sub/y?token="+tok, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 403 || !strings.Contains(string(b), `"action":"sub","topic":"/y"`) {
		t.Fatalf("SSE above rights: %d %s", resp2.StatusCode, b)
	}
}
