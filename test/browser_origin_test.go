package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// originPage is a page of another origin that uses the broker named in
// its query (?broker=http://host:port) as a browser application would: a WebSocket
// subscription, then a fetch POST with a JSON body (which needs a CORS
// preflight); the outcome lands in #result.
const originPage = `<!doctype html><meta charset="utf-8"><title>app</title><pre id="result"></pre>
<script>
const broker = new URLSearchParams(location.search).get("broker");
const out = [];
function finish(what) { out.push(what); if (out.length === 2) { document.getElementById("result").textContent = out.sort().join(" "); } }
const ws = new WebSocket(broker.replace("http", "ws") + "/sub/app/feed");
let opened = false;
ws.onopen = async () => {
  opened = true;
  try {
    const r = await fetch(broker + "/pub/app/feed", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"hello":1}'});
    finish("fetch:" + r.status);
  } catch (e) { finish("fetch:refused"); }
};
ws.onmessage = (ev) => { finish("ws:" + ev.data); ws.close(); };
ws.onerror = () => {
  if (!opened) {
    finish("ws:refused");
    fetch(broker + "/pub/app/feed", {method: "POST", headers: {"Content-Type": "application/json"}, body: '{"hello":1}'})
      .then((r) => finish("fetch:" + r.status), () => finish("fetch:refused"));
  }
};
</script>`

// TestBrowserFromAnotherOrigin: headless Chromium on a page served on
// another port. With its origin allowed, its WebSocket and its fetch POST
// (preflighted) both work; with it not allowed, both are refused. The
// dashboard works with --allow-origin set.
func TestBrowserFromAnotherOrigin(t *testing.T) {
	requireChromium(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, originPage)
	}))
	defer page.Close()

	allowed := startBroker(t, "--allow-origin", page.URL)
	other := startBroker(t, "--allow-origin", "http://localhost:5173")
	for _, c := range []struct {
		name string
		b    *brokerProc
		want string
	}{
		{"allowed", allowed, `fetch:200 ws:{"hello":1}`},
		{"not allowed", other, "fetch:refused ws:refused"},
	} {
		br := newBrowser(t, c.b.HTTP)
		br.run("open the page of "+page.URL, chromedp.Navigate(page.URL+"/?broker="+url.QueryEscape(c.b.HTTP)))
		br.waitJS("the page's outcome", `document.getElementById("result").textContent !== ""`)
		if got := br.text("#result"); got != c.want {
			t.Errorf("origin %s: %q, want %q", c.name, got, c.want)
		}
	}
	if !strings.Contains(other.logs.String(), "reason=origin") {
		t.Error("the refused origin was not logged")
	}

	// The dashboard is the broker's own origin: it works whatever the list.
	br := newBrowser(t, allowed.HTTP)
	br.open("")
	br.waitJS("#overview-connections filled", `document.querySelector("#overview-connections").children.length > 0 && !document.querySelector("#overview-connections").textContent.includes("Not available")`)
	br.click(`nav.views a[href="#/queues"]`)
	br.waitText("#queues-list", "No queue")
	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("dashboard console errors with --allow-origin: %v", errs)
	}
}
