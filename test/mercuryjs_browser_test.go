package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

// mercuryjsPage is a page of another origin that loads mercury.js from the
// broker, subscribes to a durable bus from its start, and publishes 2,000
// messages, publishing again what was not confirmed.
const mercuryjsPage = `<!doctype html><title>mercury.js</title><script type="module">
import { connect } from "%s/mercury.js";
window.got = []; window.published = 0; window.retries = 0; window.states = [];
const m = connect(%q, { backoff: { initial: 100, max: 1000 }, onState: (s) => window.states.push(s) });
m.subscribe("/durable", { since: 0, onMessage: (msg) => window.got.push([msg.seq, msg.data.i]) });
const confirmed = [];
for (let i = 0; i < 2000; i++) {
  for (;;) {
    try { confirmed.push(await m.publish("/durable/x", { i })); break; }
    catch { window.retries++; await new Promise((r) => setTimeout(r, 50)); }
  }
  window.published = i + 1;
}
window.last = confirmed[confirmed.length - 1];
</script>`

// TestMercuryJSBrowserDurableRestarts: in headless Chromium, a page of
// another origin loads /mercury.js from the broker; its subscriber on a
// durable bus keeps every message, in order, once, while the broker is
// killed and restarted on the same data dir twice during a 2,000-message
// publish.
func TestMercuryJSBrowserDurableRestarts(t *testing.T) {
	requireChromium(t)
	page := httptest.NewServer(nil) // its URL names the origin the broker allows
	t.Cleanup(page.Close)
	cfg := mercuryjsConfig(t, "")
	data := t.TempDir()
	args := []string{"--config", cfg, "--data-dir", data, "--allow-origin", page.URL}
	b := startBroker(t, args...)
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, mercuryjsPage, b.HTTP, b.WS)
	})

	br := newBrowser(t, page.URL)
	br.run("open the page", chromedp.Navigate(page.URL+"/"))
	for _, at := range []int{600, 1300} {
		br.waitJS(fmt.Sprint(at, " published"), fmt.Sprintf("window.published >= %d", at))
		b.signal(syscall.SIGKILL)
		<-b.done
		b = startBrokerOn(t, b.Listen, args...)
	}
	br.waitJS("all published and received", `window.last > 0 && window.got.length > 0 && window.got[window.got.length-1][0] >= window.last`)

	ctx, cancel := context.WithTimeout(br.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({got: window.got, last: window.last, retries: window.retries, states: window.states})`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Got     [][2]uint64
		Last    uint64
		Retries int
		States  []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(res.States, " "), "reconnecting"); n < 2 {
		t.Errorf("states %v: the broker was restarted twice", res.States)
	}
	kept := replayDurable(t, b, res.Last, &client.Options{Header: http.Header{"Origin": {page.URL}}})
	checkReceivedKept(t, res.Got, kept, 2000)
	t.Logf("%d messages received, %d kept, %d publishes retried", len(res.Got), len(kept), res.Retries)
	// The page took mercury.js from the broker, across origins.
	loaded := false
	for _, u := range br.allRequests() {
		loaded = loaded || u == b.HTTP+"/mercury.js"
	}
	if !loaded {
		t.Fatalf("mercury.js not loaded from the broker: %v", br.allRequests())
	}
}

// checkReceivedKept checks what a subscriber got ([seq, i] pairs) across
// broker restarts against what the broker keeps: every kept message, in
// order and once; every one of the n published (each retried until
// confirmed) kept. The subscriber may also have got a message the broker
// no longer has: one delivered a moment before it was on disk when the
// broker was killed (its publisher was never told ok, and retried it).
// Its sequence number is never given again, so nothing is received twice
// under one number.
func checkReceivedKept(t *testing.T, got, kept [][2]uint64, n int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i][0] <= got[i-1][0] {
			t.Fatalf("received seq %d after %d: out of order or twice", got[i][0], got[i-1][0])
		}
	}
	j, lost := 0, 0
	for _, k := range kept {
		for j < len(got) && got[j][0] < k[0] {
			j++
			lost++ // received, but never on disk
		}
		if j == len(got) || got[j] != k {
			t.Fatalf("kept %v was not received (received %d, kept %d)", k, len(got), len(kept))
		}
		j++
	}
	seen := map[uint64]bool{}
	for _, k := range kept {
		seen[k[1]] = true
	}
	for i := range uint64(n) {
		if !seen[i] {
			t.Fatalf("message %d is not kept: a confirmed publish was lost", i)
		}
	}
	if lost > 0 {
		t.Logf("%d messages received a moment before a kill, never on disk (their publishes were retried)", lost)
	}
}

// replayDurable reads /durable from its start up to sequence number last,
// as [seq, i] pairs.
func replayDurable(t *testing.T, b *brokerProc, last uint64, opts *client.Options) [][2]uint64 {
	t.Helper()
	sub := dial(t, b.WS+"/sub/durable?since=0&envelope=1", opts)
	var kept [][2]uint64
	for len(kept) == 0 || kept[len(kept)-1][0] < last {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		f, err := sub.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("replay after %d: %v", len(kept), err)
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.Message == nil {
			t.Fatalf("replay: %s %v", f.Data, err)
		}
		var d struct{ I uint64 }
		json.Unmarshal(in.Message.Data, &d)
		kept = append(kept, [2]uint64{in.Message.Seq, d.I})
	}
	return kept
}

// mercuryjsPullPage pushes 500 jobs and works them, refusing every tenth
// once.
const mercuryjsPullPage = `<!doctype html><title>mercury.js</title><script type="module">
import { connect } from "%s/mercury.js";
const m = connect(%q);
window.done = {}; window.nacked = 0; window.count = 0;
for (let i = 0; i < 500; i++) await m.push("/work", { i });
m.pull("/work", async (job) => {
  if (job.data.i %% 10 === 0 && job.attempt === 1) { window.nacked++; throw new Error("not now"); }
  window.done[job.data.i] = (window.done[job.data.i] || 0) + 1;
  window.count++;
}, { prefetch: 4 });
</script>`

// TestMercuryJSBrowserPull: in headless Chromium, a worker pulls 500
// jobs and nacks every tenth once; every job is done exactly once and the
// queue ends empty.
func TestMercuryJSBrowserPull(t *testing.T) {
	requireChromium(t)
	page := httptest.NewServer(nil)
	t.Cleanup(page.Close)
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir(), "--allow-origin", page.URL)
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, mercuryjsPullPage, b.HTTP, b.WS)
	})
	br := newBrowser(t, page.URL)
	br.run("open the page", chromedp.Navigate(page.URL+"/"))
	br.waitJS("500 jobs done", "window.count >= 500")
	time.Sleep(300 * time.Millisecond) // a job done twice would show by now
	ctx, cancel := context.WithTimeout(br.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({done: window.done, nacked: window.nacked})`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Done   map[string]int
		Nacked int
	}
	json.Unmarshal([]byte(out), &res)
	if len(res.Done) != 500 || res.Nacked != 50 {
		t.Fatalf("%d jobs done, %d nacked", len(res.Done), res.Nacked)
	}
	for i, n := range res.Done {
		if n != 1 {
			t.Fatalf("job %s done %d times", i, n)
		}
	}
	var raw []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		// With allowed origins, a request must carry one.
		req, _ := http.NewRequest(http.MethodGet, b.HTTP+"/api/queues", nil)
		req.Header.Set("Origin", page.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var qs []map[string]any
		json.Unmarshal(raw, &qs)
		if len(qs) == 1 && qs[0]["waiting"] == 0.0 && qs[0]["in_flight"] == 0.0 && qs[0]["dead"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues after the run: %s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mercuryjsTokenPage subscribes and publishes once a second with tokens
// its backend (the test) mints for 5 s at a time.
const mercuryjsTokenPage = `<!doctype html><title>mercury.js</title><script type="module">
import { connect } from "%s/mercury.js";
window.got = 0; window.published = 0; window.states = []; window.errors = [];
const m = connect(%q, {
  getToken: async () => (await fetch("/token")).text(),
  onState: (s) => window.states.push(s), onError: (e) => window.errors.push(e.message),
});
m.subscribe("/tok", { onMessage: () => window.got++ });
for (;;) {
  await m.publish("/tok/x", window.published + 1);
  window.published++;
  await new Promise((r) => setTimeout(r, 1000));
}
</script>`

// TestMercuryJSBrowserTokenRefresh: in headless Chromium, tokens that
// expire every 5 s are refreshed in-band for a minute (12 s with -short)
// without a reconnection.
func TestMercuryJSBrowserTokenRefresh(t *testing.T) {
	requireChromium(t)
	k := authtest.NewKeys(t)
	cfg := filepath.Join(t.TempDir(), "mercury.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("auth:\n  jwt:\n    secret_file: %s\n    issuer: %s\n    audience: %s\n",
		k.Files.Secret, k.Issuer, k.Audience)), 0o600)
	page := httptest.NewServer(nil)
	t.Cleanup(page.Close)
	b := startBroker(t, "--config", cfg, "--allow-origin", page.URL)
	var minted atomic.Int64
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			minted.Add(1)
			fmt.Fprint(w, k.Sign(t, "HS256", k.Claims("page", 5*time.Second, map[string]any{"sub": []any{"/tok"}, "pub": []any{"/tok"}}), ""))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, mercuryjsTokenPage, b.HTTP, b.WS)
	})
	seconds := 60
	if testing.Short() {
		seconds = 12
	}
	br := newBrowser(t, page.URL)
	br.run("open the page", chromedp.Navigate(page.URL+"/"))
	br.waitJS("the first message", "window.got >= 1")
	time.Sleep(time.Duration(seconds) * time.Second)
	br.waitJS("every message received", "window.got === window.published")
	ctx, cancel := context.WithTimeout(br.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({got: window.got, states: window.states, errors: window.errors})`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Got    int
		States []string
		Errors []string
	}
	json.Unmarshal([]byte(out), &res)
	if res.Got < seconds-2 || fmt.Sprint(res.States) != "[open]" || len(res.Errors) > 0 {
		t.Fatalf("%d messages, states %v, errors %v", res.Got, res.States, res.Errors)
	}
	if n := minted.Load(); n < int64(seconds/5) {
		t.Fatalf("%d tokens minted in %d s of 5 s tokens", n, seconds)
	}
	if strings.Contains(b.logs.String(), "token expired") {
		t.Fatalf("a connection was closed for an expired token")
	}
	t.Logf("%d tokens minted, %d messages", minted.Load(), res.Got)
}

// TestMercuryJSBrowserServerSentEvents: in headless Chromium, behind a
// reverse proxy that refuses WebSockets and serves the page, a
// subscription works over Server-Sent Events.
func TestMercuryJSBrowserServerSentEvents(t *testing.T) {
	requireChromium(t)
	b := startBroker(t)
	target, _ := url.Parse(b.HTTP)
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the Host: the page's origin is the broker's
	var refused atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			refused.Add(1)
			http.Error(w, "no WebSockets here", http.StatusForbidden)
		case r.URL.Path == "/page":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><title>sse</title><script type="module">
import { connect } from "/mercury.js";
window.got = [];
const m = connect(location.origin);
m.subscribe("/sse", { onMessage: (msg) => window.got.push(msg.data) });
</script>`)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	br := newBrowser(t, front.URL)
	br.run("open the page", chromedp.Navigate(front.URL+"/page"))
	// The stream's headers come with its first event: publish until the
	// page has three.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			client.Post(context.Background(), nil, b.HTTP+"/pub/sse/x", "", []byte(fmt.Sprint(i)), nil)
		}
	}()
	br.waitJS("three messages", "window.got.length >= 3")
	close(stop)
	<-published
	ctx, cancel := context.WithTimeout(br.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.got)`))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	json.Unmarshal([]byte(out), &got)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("got %v", got)
		}
	}
	if refused.Load() == 0 {
		t.Fatal("no WebSocket was tried")
	}
}
