package web

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/web/client"
)

// startServerOn starts a server on b, a broker the test opened; the
// caller shuts it down.
func startServerOn(t testing.TB, b *broker.Broker, opts Options) *testServer {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	return &testServer{Server: s, broker: b, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// feedPolicy keeps history of /feed, in memory: a restart forgets it.
func feedPolicy(t testing.TB) broker.Options {
	return broker.Options{Policies: policies(t, broker.Policy{Bus: "/feed", History: broker.History{Messages: 100}})}
}

// restarted returns a server whose broker gave out seq 1–5, and the
// server started after it without a data directory, which has given out
// seq 1–3 since.
func restarted(t *testing.T) (before, after *testServer) {
	t.Helper()
	before = startServerWithBroker(t, feedPolicy(t), Options{})
	for i := range 5 {
		post(t, before, "pub", "/feed/a", "", fmt.Sprint("old ", i))
	}
	after = startServerWithBroker(t, feedPolicy(t), Options{})
	for i := range 3 {
		post(t, after, "pub", "/feed/a", "", fmt.Sprint("new ", i))
	}
	return before, after
}

// A subscriber resuming from a position of before a restart without a
// data directory is told so, in envelope mode, then gets all there is.
func TestSinceFromBeforeARestartIsAReset(t *testing.T) {
	before, ts := restarted(t)
	for _, q := range [][]string{
		{"since", "5"}, // beyond the last seq, no epoch: a client from before epochs
		{"since", "2", "epoch", before.broker.Epoch()},
		{"since", before.broker.Epoch() + ":2"},
	} {
		sub := ts.dialURL(t, client.URL(ts.ws, "sub", "/feed", query(append(q, "envelope", "1")...)), nil)
		var gap struct{ Gap *broker.Gap }
		if err := json.Unmarshal([]byte(sub.nextText(t)), &gap); err != nil || gap.Gap == nil {
			t.Fatalf("%v: first frame is no gap (%v)", q, err)
		}
		if g := gap.Gap; !g.Reset || g.Epoch != ts.broker.Epoch() || g.From != 0 || g.To != 0 {
			t.Fatalf("%v: gap %+v, want a reset to epoch %s", q, g, ts.broker.Epoch())
		}
		for want := uint64(1); want <= 3; want++ {
			var e client.Envelope
			json.Unmarshal([]byte(sub.nextText(t)), &e)
			if e.Seq != want || e.Epoch != ts.broker.Epoch() || string(e.Data) != fmt.Sprintf(`"new %d"`, want-1) {
				t.Fatalf("%v: envelope %+v, want seq %d of epoch %s", q, e, want, ts.broker.Epoch())
			}
		}
		sub.nothing(t)
	}
	// A position of this epoch resumes as it always did.
	sub := ts.dialURL(t, client.URL(ts.ws, "sub", "/feed", query("since", "2", "epoch", ts.broker.Epoch(), "envelope", "1")), nil)
	var e client.Envelope
	json.Unmarshal([]byte(sub.nextText(t)), &e)
	if e.Seq != 3 {
		t.Fatalf("resumed at 2: got %+v, want seq 3", e)
	}
	sub.nothing(t)
}

func TestSinceAndEpochMustAgree(t *testing.T) {
	ts := startServer(t, Options{})
	for _, q := range []string{"since=ab:1&epoch=cd", "epoch=cd", "since=:1", "since=ab:"} {
		req, _ := http.NewRequest(http.MethodGet, ts.http.URL+"/sub/x?"+q, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// An EventSource that reconnects after a restart without a data directory
// sends its Last-Event-ID of before: it gets an event named gap, then all
// there is, each event's id naming the new epoch.
func TestEventStreamLastEventIDFromBeforeARestart(t *testing.T) {
	before, ts := restarted(t)
	epoch := ts.broker.Epoch()
	for _, id := range []string{"5", before.broker.Epoch() + ":2"} {
		_, r := openEventStream(t, ts, "/sub/feed", http.Header{"Last-Event-ID": {id}})
		ev := nextEvent(t, r)
		var g broker.Gap
		if err := json.Unmarshal([]byte(ev["data"]), &g); ev["event"] != "gap" || err != nil || !g.Reset || g.Epoch != epoch {
			t.Fatalf("Last-Event-ID %s: first event %v, want a gap that resets to epoch %s", id, ev, epoch)
		}
		if ev["id"] != epoch+":0" {
			t.Fatalf("Last-Event-ID %s: the gap's id %q, want %s:0", id, ev["id"], epoch)
		}
		for i := 1; i <= 3; i++ {
			ev := nextEvent(t, r)
			if ev["id"] != fmt.Sprintf("%s:%d", epoch, i) || ev["data"] != fmt.Sprint("new ", i-1) {
				t.Fatalf("Last-Event-ID %s: event %v, want new %d with id %s:%d", id, ev, i-1, epoch, i)
			}
		}
	}
	// Its own ids resume without a gap, and so does a plain number.
	for _, id := range []string{epoch + ":2", "2"} {
		_, r := openEventStream(t, ts, "/sub/feed", http.Header{"Last-Event-ID": {id}})
		if ev := nextEvent(t, r); ev["id"] != epoch+":3" || ev["event"] != "" {
			t.Fatalf("Last-Event-ID %s: event %v, want seq 3", id, ev)
		}
	}
}

// With a data directory the sequence numbers, and their epoch, survive a
// restart: an event stream resumes across it without a reset.
func TestEventStreamResumesAcrossARestartWithADataDirectory(t *testing.T) {
	dir := t.TempDir()
	// open starts a server on the store in dir; stop stops it and closes
	// the store.
	open := func() (ts *testServer, stop func()) {
		d, err := store.OpenDurable(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := broker.Open(broker.Options{Store: d,
			Policies: policies(t, broker.Policy{Bus: "/feed", Durable: true, History: broker.History{Messages: 100}})})
		if err != nil {
			t.Fatal(err)
		}
		ts = startServerOn(t, b, Options{})
		return ts, func() {
			ts.Shutdown(t.Context())
			ts.http.Close()
			b.Close()
			d.Close()
		}
	}
	ts, stop := open()
	for i := range 5 {
		post(t, ts, "pub", "/feed/a", "", fmt.Sprint("m", i))
	}
	_, r := openEventStream(t, ts, "/sub/feed", http.Header{"Last-Event-ID": {"2"}})
	third := nextEvent(t, r)["id"]
	epoch := ts.broker.Epoch()
	if third != epoch+":3" {
		t.Fatalf("id %q, want %s:3", third, epoch)
	}
	stop()

	ts, stop = open()
	defer stop()
	if ts.broker.Epoch() != epoch {
		t.Fatalf("epoch %q after a restart, was %q", ts.broker.Epoch(), epoch)
	}
	_, r = openEventStream(t, ts, "/sub/feed", http.Header{"Last-Event-ID": {third}})
	if ev := nextEvent(t, r); ev["id"] != epoch+":4" || ev["data"] != "m3" {
		t.Fatalf("after the restart: event %v, want m3 with id %s:4", ev, epoch)
	}
}
