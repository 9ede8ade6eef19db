package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// soakScript subscribes as a dashboard would: soakParams.ws WebSockets and
// soakParams.sse EventSources on soakParams.topic at soakParams.broker
// (host:port; "" for the page's own). window.soak holds what each received.
const soakScript = `
const {broker, topic, ws, sse} = window.soakParams;
window.soak = [];
function tally() { const t = {got: [], opens: 0, problems: []}; window.soak.push(t); return t; }
function record(t, data) {
  try { t.got.push(JSON.parse(data).n); } catch (e) { t.problems.push('unexpected ' + String(data).slice(0, 100)); }
}
for (let i = 0; i < ws; i++) {
  const t = tally(), s = new WebSocket('ws://' + (broker || location.host) + '/sub' + topic);
  s.onopen = () => t.opens++;
  s.onmessage = (e) => record(t, e.data);
  s.onclose = (e) => t.problems.push('WebSocket closed: ' + e.code + ' ' + e.reason);
}
for (let i = 0; i < sse; i++) {
  const t = tally(), s = new EventSource((broker ? 'http://' + broker : '') + '/sub' + topic);
  s.onopen = () => t.opens++;
  s.onmessage = (e) => record(t, e.data);
  s.onerror = () => t.problems.push('EventSource error, readyState ' + s.readyState);
}
`

// soakPageHTML is the page served from an origin other than the broker's:
// it runs soakScript with the parameters of its query.
const soakPageHTML = `<!doctype html>
<meta charset="utf-8"><title>soak</title>
<script>
const q = new URLSearchParams(location.search);
window.soakParams = {broker: q.get('broker'), topic: q.get('topic'), ws: +q.get('ws'), sse: +q.get('sse')};
` + soakScript + `</script>`

// soakPage is a tab of headless Chromium running soakScript.
type soakPage struct {
	ctx     context.Context // the tab
	tallies []*soakTally    // the WebSockets, then the EventSources
}

func newSoakPage(ctx context.Context, where string, ws, sse int) *soakPage {
	p := &soakPage{ctx: ctx}
	for i := range ws + sse {
		kind := "browser WebSocket, "
		if i >= ws {
			kind = "browser EventSource, "
		}
		p.tallies = append(p.tallies, newSoakTally(kind+where))
	}
	return p
}

// startSoakPageServer serves soakPageHTML; its URL is the page's origin.
func startSoakPageServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, soakPageHTML)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// openSoakPage opens the page of srv, another origin than broker's, in
// b's tab, with ws WebSockets and sse EventSources on topic, and waits
// until they are all open.
func openSoakPage(t *testing.T, b *browser, srv *httptest.Server, broker *brokerProc, topic string, ws, sse int) *soakPage {
	t.Helper()
	p := newSoakPage(b.ctx, "other origin", ws, sse)
	q := url.Values{"broker": {broker.Listen}, "topic": {topic}, "ws": {fmt.Sprint(ws)}, "sse": {fmt.Sprint(sse)}}
	b.run("open the soak page", chromedp.Navigate(srv.URL+"/?"+q.Encode()))
	p.waitOpen(t)
	return p
}

// waitOpen waits until every connection of the page is open.
func (p *soakPage) waitOpen(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	expr := fmt.Sprintf(`!!window.soak && window.soak.length == %d && window.soak.every(t => t.opens > 0)`, len(p.tallies))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.refresh()
		var why []string
		for _, tl := range p.tallies {
			why = append(why, tl.kind+": "+tl.verdict(0))
		}
		t.Fatalf("the page's connections did not all open: %v\n%s", err, strings.Join(why, "\n"))
	}
}

// refresh copies what the page's connections received into their tallies.
func (p *soakPage) refresh() {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.soak)`))
	if err != nil {
		p.tallies[0].problem("failed to read the page: %v", err)
		return
	}
	var state []struct {
		Got      []int    `json:"got"`
		Opens    int      `json:"opens"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(s), &state); err != nil || len(state) != len(p.tallies) {
		p.tallies[0].problem("the page's state %.200q: %v", s, err)
		return
	}
	for i, st := range state {
		p.tallies[i].set(st.Got, st.Opens, st.Problems)
	}
}
