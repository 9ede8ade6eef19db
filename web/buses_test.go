package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/schema"
	"github.com/mercury-broker/mercury/web/client"
)

const schemaDir = "../examples/schemas"

// testBuses builds buses with the example schemas: /livesys and its
// stricter /livesys/admin, /livesys/free without a schema, /jobs queue
// settings only.
func testBuses(t testing.TB, livesysSchema string) *Buses {
	t.Helper()
	ps, err := broker.NewPolicies([]broker.Policy{
		{Bus: "/livesys", History: broker.History{Messages: 10}},
		{Bus: "/livesys/admin"},
		{Bus: "/livesys/free"},
		{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := schema.Compile([]schema.Source{
		{Bus: "/livesys", File: filepath.Join(schemaDir, livesysSchema)},
		{Bus: "/livesys/admin", File: filepath.Join(schemaDir, "livesys-admin.json")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Buses{Policies: ps, Schemas: reg}
}

const (
	goodCommand  = `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`
	badCommand   = `{"cmd":"dance","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`
	adminCommand = `{"cmd":"wipe","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z","by":"ops@example.com","reason":"decommissioned"}`
)

// wireError is the JSON form of a refusal.
type wireError struct {
	Error struct {
		Code    string          `json:"code"`
		Topic   string          `json:"topic"`
		Bus     string          `json:"bus"`
		Message string          `json:"message"`
		Details []schema.Detail `json:"details"`
	} `json:"error"`
}

func parseError(t testing.TB, data string) wireError {
	t.Helper()
	var e wireError
	if err := json.Unmarshal([]byte(data), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error frame: %q (%v)", data, err)
	}
	return e
}

func TestSchemaBusOverEveryPattern(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json")})
	sub := ts.dial(t, "sub", "/livesys")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/livesys/42")

	pub.send(t, badCommand)
	e := parseError(t, pub.nextText(t))
	if e.Error.Code != "schema" || e.Error.Topic != "/livesys/42" || e.Error.Bus != "/livesys" ||
		len(e.Error.Details) != 1 || e.Error.Details[0].At != "/cmd" || e.Error.Details[0].Schema != "#/properties/cmd/enum" {
		t.Fatalf("error frame %+v", e)
	}
	pub.send(t, "hello")
	if e := parseError(t, pub.nextText(t)); e.Error.Code != "json" || *e.Error.Details[0].Offset != 0 {
		t.Fatalf("error frame %+v", e)
	}
	if err := pub.WriteBinary(context.Background(), []byte(goodCommand)); err != nil {
		t.Fatal(err)
	}
	if e := parseError(t, pub.nextText(t)); e.Error.Code != "binary" {
		t.Fatalf("error frame %+v", e)
	}
	// The connection stays open; the subscriber got none of the above.
	pub.send(t, goodCommand)
	if got := sub.nextText(t); got != goodCommand {
		t.Fatalf("subscriber got %q", got)
	}

	// POST: 422 with the same JSON.
	resp := post(t, ts, "pub", "/livesys/42", "", badCommand)
	if resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("POST = %d %s", resp.Status, resp.Body)
	}
	if e := parseError(t, string(resp.Body)); e.Error.Code != "schema" || e.Error.Bus != "/livesys" || e.Error.Details[0].At != "/cmd" {
		t.Fatalf("POST body %s", resp.Body)
	}

	// /bus and /push are checked too.
	peer := ts.dial(t, "bus", "/livesys/room")
	ts.waitPeers(t, 1)
	if resp := post(t, ts, "bus", "/livesys/room", "", badCommand); resp.Status != 422 {
		t.Fatalf("POST /bus = %d", resp.Status)
	}
	if resp := post(t, ts, "push", "/livesys/q", "", badCommand); resp.Status != 422 {
		t.Fatalf("POST /push = %d", resp.Status)
	}
	pusher := ts.dial(t, "push", "/livesys/q")
	pusher.send(t, `{}`)
	if e := parseError(t, pusher.nextText(t)); e.Error.Code != "schema" || e.Error.Details[0].Schema != "#/required" {
		t.Fatalf("push error frame %+v", e)
	}
	post(t, ts, "bus", "/livesys/room", "", goodCommand)
	if got := peer.nextText(t); got != goodCommand {
		t.Fatalf("bus peer got %q", got)
	}
	sub.nothing(t)
}

func TestNestedBusesAndBusesWithoutSchema(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json")})
	cases := []struct {
		topic, body string
		status      int
	}{
		{"/livesys/admin/7", adminCommand, 200},
		{"/livesys/admin/7", goodCommand, 422}, // the longer prefix's schema
		{"/livesys/7", adminCommand, 422},
		{"/livesys/7", goodCommand, 200},
		{"/livesys/free/7", "anything at all", 200}, // a nested bus without a schema
		{"/jobs/1", "anything", 200},                // a bus without a schema
		{"/livesysX", "anything", 200},              // under no bus
		{"/other", "anything", 200},
	}
	for _, c := range cases {
		if resp := post(t, ts, "pub", c.topic, "", c.body); resp.Status != c.status {
			t.Errorf("POST %s %.20q = %d %s, want %d", c.topic, c.body, resp.Status, resp.Body, c.status)
		}
	}
}

func TestBusesAPI(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json")})
	resp, err := http.Get(ts.http.URL + "/api/buses")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Buses []busInfo `json:"buses"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Buses) != 4 || list.Buses[0].Bus != "/jobs" || list.Buses[0].Queue.MaxAttempts != 5 ||
		list.Buses[1].Bus != "/livesys" || list.Buses[1].Schema != "livesys.json" || list.Buses[1].History.Messages != 10 ||
		list.Buses[1].SchemaURL != "/api/buses/schema?bus=%2Flivesys" || strings.Join(list.Buses[1].Documents, " ") != "livesys.json defs.json" ||
		list.Buses[3].Bus != "/livesys/free" || list.Buses[3].Schema != "" {
		t.Fatalf("GET /api/buses: %+v", list)
	}

	get := func(path string) (int, string, string) {
		resp, err := http.Get(ts.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), b.String()
	}
	status, ctype, body := get(list.Buses[1].SchemaURL)
	if status != 200 || ctype != "application/schema+json" || !strings.Contains(body, `"title": "A command for a livesys agent"`) {
		t.Fatalf("schema: %d %s %.80s", status, ctype, body)
	}
	if status, _, body := get("/api/buses/schema?bus=/livesys&file=defs.json"); status != 200 || !strings.Contains(body, "$defs") {
		t.Fatalf("referenced file: %d %.80s", status, body)
	}
	for path, want := range map[string]string{
		"/api/buses/schema?bus=/livesys/free":                 `"code":"no_schema","bus":"/livesys/free","message":"bus /livesys/free has no schema`,
		"/api/buses/schema?bus=/nothing":                      `"message":"no bus /nothing is declared`,
		"/api/buses/schema?bus=/livesys&file=../livesys.json": `uses no file ../livesys.json`,
	} {
		if status, _, body := get(path); status != 404 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	if status, _, _ := get("/api/buses/schema"); status != 400 {
		t.Errorf("no bus: %d", status)
	}
}

func TestReload(t *testing.T) {
	var mu sync.Mutex
	next, nextErr := (*Buses)(nil), error(nil)
	ts := startServer(t, Options{
		Buses: testBuses(t, "livesys.json"),
		Reload: func() (*Buses, error) {
			mu.Lock()
			defer mu.Unlock()
			return next, nextErr
		},
	})
	sub := ts.dial(t, "sub", "/livesys")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/livesys/42")
	reload := func() *client.Response {
		resp, err := client.Post(context.Background(), nil, ts.http.URL+"/api/reload", "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// A failed reload keeps the running buses and says why.
	mu.Lock()
	nextErr = errors.New("mercury.yaml:3: buses./livesys.schemma: unknown key")
	mu.Unlock()
	if resp := reload(); resp.Status != 500 || !strings.Contains(string(resp.Body), `"code":"reload"`) || !strings.Contains(string(resp.Body), "schemma: unknown key") {
		t.Fatalf("failed reload: %d %s", resp.Status, resp.Body)
	}
	pub.send(t, badCommand)
	if e := parseError(t, pub.nextText(t)); e.Error.Code != "schema" {
		t.Fatalf("%+v", e)
	}

	// A good one puts the new schema in force; open connections stay.
	mu.Lock()
	next, nextErr = testBuses(t, "validation.json"), nil
	mu.Unlock()
	if resp := reload(); resp.Status != 200 || !strings.Contains(string(resp.Body), `"reloaded":true`) || !strings.Contains(string(resp.Body), `"schema":"validation.json"`) {
		t.Fatalf("reload: %d %s", resp.Status, resp.Body)
	}
	pub.send(t, goodCommand) // a command is no validation result
	if e := parseError(t, pub.nextText(t)); e.Error.Code != "schema" || e.Error.Details[0].Schema != "#/required" {
		t.Fatalf("%+v", e)
	}
	valid := `{"run":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","host":"h1","suite":"s","result":"pass","started":"2026-11-24T11:00:00Z","finished":"2026-11-24T11:00:01Z"}`
	pub.send(t, valid)
	if got := sub.nextText(t); got != valid {
		t.Fatalf("subscriber got %q", got)
	}

	// Without a reload function there is nothing to reload.
	plain := startServer(t, Options{})
	resp, err := client.Post(context.Background(), nil, plain.http.URL+"/api/reload", "", nil, nil)
	if err != nil || resp.Status != http.StatusConflict || !strings.Contains(string(resp.Body), `"code":"no_config"`) {
		t.Fatalf("reload without config: %v %d %s", err, resp.Status, resp.Body)
	}
}

// TestReloadWhilePublishing swaps the buses while messages flow: under
// -race, and every message is either delivered or refused.
func TestReloadWhilePublishing(t *testing.T) {
	a, b := testBuses(t, "livesys.json"), testBuses(t, "livesys.json")
	var n int
	var mu sync.Mutex
	ts := startServer(t, Options{Buses: a, Reload: func() (*Buses, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 0 {
			return a, nil
		}
		return b, nil
	}})
	sub := ts.dial(t, "sub", "/livesys")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/livesys/1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			ts.Reload()
		}
	}()
	const msgs = 300
	for i := range msgs {
		if i%2 == 0 {
			pub.send(t, goodCommand)
		} else {
			pub.send(t, badCommand)
		}
	}
	<-done
	for range msgs / 2 {
		if got := sub.nextText(t); got != goodCommand {
			t.Fatalf("subscriber got %q", got)
		}
		if e := parseError(t, pub.nextText(t)); e.Error.Code != "schema" {
			t.Fatalf("%+v", e)
		}
	}
	sub.nothing(t)
}

// In envelope mode a refusal is the frame's answer in place of {"ok":…}.
func TestSchemaRefusalInEnvelopeMode(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json")})
	pub := ts.dialURL(t, ts.ws+"/pub/livesys/42?envelope=1", nil)
	pub.send(t, badCommand)
	pub.send(t, goodCommand)
	if e := parseError(t, pub.nextText(t)); e.Error.Code != "schema" || e.Error.Bus != "/livesys" || e.Error.Details[0].At != "/cmd" {
		t.Fatalf("%+v", e)
	}
	if got := pub.nextText(t); !strings.HasPrefix(got, `{"ok":`) {
		t.Fatalf("got %q, want an ok", got)
	}
	resp, err := client.Post(context.Background(), nil, ts.http.URL+"/pub/livesys/42", "", []byte(badCommand), http.Header{"Accept": {"application/json"}})
	if err != nil || resp.Status != 422 || parseError(t, string(resp.Body)).Error.Code != "schema" {
		t.Fatalf("POST: %v %d %s", err, resp.Status, resp.Body)
	}
}

// What /api/buses shows is what the broker does: a partial queue section
// with its defaults, a durable bus with the history it keeps.
func TestBusesAPIShowsEffectiveDefaults(t *testing.T) {
	ps, err := broker.NewPolicies([]broker.Policy{
		{Bus: "/jobs", Queue: broker.QueuePolicy{MaxAttempts: 3}},
		{Bus: "/events", Durable: true},
		{Bus: "/plain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]busInfo{}
	for _, info := range describeBuses(&Buses{Policies: ps, Schemas: &schema.Registry{}}, 500) {
		got[info.Bus] = info
	}
	if q := got["/jobs"].Queue; q == nil || *q != (queueInfo{Limit: 500, MaxBytes: broker.DefaultQueueMaxBytes, MaxAttempts: 3, AckTimeout: "30s", TTL: "48h0m0s"}) {
		t.Errorf("/jobs queue: %+v", q)
	}
	if h := got["/events"].History; h == nil || *h != (historyInfo{Messages: 10000, Age: "24h0m0s"}) {
		t.Errorf("/events history: %+v", h)
	}
	if p := got["/plain"]; p.History != nil || p.Queue != nil || p.Durable {
		t.Errorf("/plain: %+v", p)
	}
}
