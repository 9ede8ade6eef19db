package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

func getPresence(t *testing.T, ts *testServer, topic, token string) (int, []presenceJSON) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ts.http.URL+"/presence"+topic, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []presenceJSON
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, list
}

func TestPresenceLists(t *testing.T) {
	k := authtest.NewKeys(t)
	ts := startServer(t, Options{Auth: testAuth(t, k)})
	agentTok := func(id string) string {
		return k.Sign(t, "HS256", k.Claims(id, time.Hour, map[string]any{"sub": []any{"/livesys/{sub}"}}), "")
	}
	admin := k.Sign(t, "HS256", k.Claims("root", time.Hour, map[string]any{"sub": true, "admin": true}), "")
	ts.dialURL(t, ts.ws+"/sub/livesys/42", &client.Options{Token: agentTok("42")})
	ts.dialURL(t, ts.ws+"/sub/livesys/43?envelope=1", &client.Options{Token: agentTok("43")})
	ts.dialURL(t, ts.ws+"/sub/other", &client.Options{Token: admin})
	ts.waitSubscribed(t, 3)

	code, list := getPresence(t, ts, "/livesys", admin)
	if code != 200 || len(list) != 2 {
		t.Fatalf("%d %+v", code, list)
	}
	for i, want := range []string{"42", "43"} {
		p := list[i]
		if p.Topic != "/livesys/"+want || p.User == nil || *p.User != want || p.Since.IsZero() || p.Remote == "" || p.Conn == 0 {
			t.Errorf("entry %d: %+v", i, p)
		}
	}
	// Agent 42 sees itself, without the admin details, and not agent 43.
	code, list = getPresence(t, ts, "/livesys/42", agentTok("42"))
	if code != 200 || len(list) != 1 || list[0].Remote != "" || list[0].Conn != 0 {
		t.Fatalf("%d %+v", code, list)
	}
	for _, topic := range []string{"/livesys/43", "/livesys"} {
		if code, _ := getPresence(t, ts, topic, agentTok("42")); code != 403 {
			t.Errorf("agent 42 on %s: %d, want 403", topic, code)
		}
	}
	if code, _ := getPresence(t, ts, "/livesys", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
}

func TestPresenceEventsForAHundredAgents(t *testing.T) {
	ts := startServer(t, Options{})
	watcher := ts.dialURL(t, ts.ws+"/sub/livesys?envelope=1&presence=1", nil)
	elsewhere := ts.dialURL(t, ts.ws+"/sub/other?envelope=1&presence=1", nil)
	ts.waitSubscribed(t, 2)
	// The watcher sees its own join.
	if got := watcher.nextText(t); got == "" {
		t.Fatal("no frame")
	}
	const n = 100
	ctx := context.Background()
	agents := make([]*client.Conn, n)
	for i := range agents {
		c, err := client.Dial(ctx, fmt.Sprintf("%s/sub/livesys/%d", ts.ws, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = c
	}
	ts.waitSubscribed(t, n+2)
	for _, c := range agents {
		c.Close()
	}
	joined, left := map[string]bool{}, map[string]bool{}
	for len(left) < n {
		var f struct {
			Presence presenceJSON `json:"presence"`
		}
		if err := json.Unmarshal([]byte(watcher.nextText(t)), &f); err != nil {
			t.Fatal(err)
		}
		p := f.Presence
		switch {
		case p.Event == "join" && !joined[p.Topic] && !left[p.Topic]:
			joined[p.Topic] = true
		case p.Event == "leave" && joined[p.Topic] && !left[p.Topic]:
			left[p.Topic] = true
		default:
			t.Fatalf("unexpected event %+v", p)
		}
		if p.User != nil || p.Remote != "" || p.Since.IsZero() {
			t.Fatalf("event %+v", p)
		}
	}
	if len(joined) != n {
		t.Fatalf("%d joins, want %d", len(joined), n)
	}
	// A watcher is no responder.
	if resp := postRequest(t, ts, "/livesys", "", "", "x", nil); resp.Status != 503 {
		t.Fatalf("request to a watcher: %d %s", resp.Status, resp.Body)
	}
	// Events are for the subscriptions at or below the watched topic only.
	if got := elsewhere.nextText(t); got == "" {
		t.Fatal("no frame")
	}
	elsewhere.nothing(t)
	if code, list := getPresence(t, ts, "/livesys", ""); code != 200 || len(list) != 1 || list[0].Topic != "/livesys" {
		t.Fatalf("after they left: %d %+v", code, list)
	}
}

func TestPresenceNeedsEnvelope(t *testing.T) {
	ts := startServer(t, Options{})
	for _, u := range []string{"/sub/a?presence=1", "/bus/a?presence=1&envelope=1"} {
		_, err := client.Dial(context.Background(), ts.ws+u, nil)
		he, ok := err.(*client.HandshakeError)
		if !ok || he.Status != 400 || he.API() == nil || he.API().Code != "query" {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestPresenceOverServerSentEvents(t *testing.T) {
	ts := startServer(t, Options{})
	_, events := openEventStream(t, ts, "/sub/livesys?presence=1", nil)
	ts.waitSubscribed(t, 1)
	if ev := nextEvent(t, events); ev["event"] != "presence" || !strings.Contains(ev["data"], `"event":"join","topic":"/livesys"`) {
		t.Fatalf("own join: %v", ev)
	}
	agent := ts.dial(t, "sub", "/livesys/42")
	want := `{"presence":{"event":"join","topic":"/livesys/42","user":null,"since":`
	if ev := nextEvent(t, events); ev["event"] != "presence" || !strings.HasPrefix(ev["data"], want) {
		t.Fatalf("agent's join: %v", ev)
	}
	// An event stream is listed too.
	if code, list := getPresence(t, ts, "/livesys", ""); code != 200 || len(list) != 2 {
		t.Fatalf("%d %+v", code, list)
	}
	agent.CloseNow()
	if ev := nextEvent(t, events); ev["event"] != "presence" || !strings.Contains(ev["data"], `"event":"leave","topic":"/livesys/42"`) {
		t.Fatalf("agent's leave: %v", ev)
	}
}
