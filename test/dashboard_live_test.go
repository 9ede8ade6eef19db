package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardRidesMercuryJS: the dashboard's live views are mercury.js,
// loaded from /mercury.js as any page would. With the inspector open on
// a durable bus, the broker is killed and restarted on the same data
// dir: the page shows that it is reconnecting, then resumes after the
// last message it showed, and in the end shows every message once and
// in order, those published while it was away too.
func TestDashboardRidesMercuryJS(t *testing.T) {
	cfg := mercuryjsConfig(t, "")
	data := t.TempDir()
	b := startBroker(t, "--config", cfg, "--data-dir", data)
	br := newBrowser(t, b.HTTP)
	br.open("#/inspect?topic=/durable")
	br.waitText("#inspect-panel [role=status]", "Subscribed to /durable.")
	br.waitText("#conn", "Live")

	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if r := post(t, b.HTTP+"/pub/durable/x", fmt.Sprintf(`{"i":%d}`, i)); r.Status != 200 {
				t.Fatalf("publish %d: %d %s", i, r.Status, r.Body)
			}
		}
	}
	shown := func(n int) {
		t.Helper()
		br.waitJS(fmt.Sprint(n, " messages shown"), fmt.Sprintf(`document.querySelectorAll("#inspect-messages li.msg").length >= %d`, n))
	}
	publish(0, 50)
	shown(50)
	lastSeq := br.text("#inspect-messages li.msg:last-child .msg-head span:nth-child(2)")

	// Killed: the page says it is reconnecting, in the header and in the
	// subscription's tab and status.
	b.signal(syscall.SIGKILL)
	<-b.done
	br.waitJS("the header reconnecting", `document.querySelector("#conn").dataset.state === "reconnecting" && document.querySelector("#conn").textContent.includes("Reconnecting")`)
	br.waitText("#inspect-panel [role=status]", "Reconnecting to /durable, to resume after sequence")
	br.waitText("ul.tabs", "/durable (reconnecting)")
	br.screenshot(t.Name() + "-reconnecting")

	// Back, with what was kept: messages published before the page is
	// back come from the history, the others live.
	b = startBrokerOn(t, b.Listen, "--config", cfg, "--data-dir", data)
	publish(50, 100)
	shown(100)
	br.waitText("#inspect-panel [role=status]", "Subscribed to /durable.")
	br.waitText("#conn", "Live")

	ctx, cancel := context.WithTimeout(br.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		items: [...document.querySelectorAll("#inspect-messages li.msg")].map((li) =>
			[Number(li.dataset.seq), JSON.parse(li.querySelector("pre").textContent).i]),
		others: document.querySelectorAll("#inspect-messages li:not(.msg)").length})`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Items  [][2]int
		Others int
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 100 || res.Others != 0 {
		t.Fatalf("%d messages and %d gaps or errors shown, want 100 and none: %v", len(res.Items), res.Others, res.Items)
	}
	for k, it := range res.Items {
		if it[1] != k || (k > 0 && it[0] <= res.Items[k-1][0]) {
			t.Fatalf("message %d shown as %v after %v: want every message once, in order", k, it, res.Items[max(0, k-1)])
		}
	}

	// It resumed after the last message it showed, with mercury.js's
	// position (a WebSocket, or Server-Sent Events while WebSockets
	// failed), and loaded mercury.js from the broker.
	seq := strings.TrimPrefix(lastSeq, "seq ")
	resume := regexp.MustCompile(`/sub/durable\?since=` + seq + `(&|$)`)
	resumed, loaded := false, false
	for _, r := range br.allRequests() {
		resumed = resumed || resume.MatchString(r)
		loaded = loaded || r == b.HTTP+"/mercury.js"
	}
	if !resumed || !loaded {
		t.Errorf("resumed after seq %s: %v; loaded /mercury.js: %v; requests %v", seq, resumed, loaded, br.allRequests())
	}
	// What failed while the broker was down is the reconnection's tries.
	if errs := br.consoleErrors(func(e string) bool {
		return strings.Contains(e, "/sub/durable") || strings.Contains(e, "ERR_CONNECTION_REFUSED")
	}); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDashboardOpensNoWebSocketOfItsOwn: the dashboard's code leaves the
// broker's WebSockets and event streams to mercury.js, imported from
// /mercury.js.
func TestDashboardOpensNoWebSocketOfItsOwn(t *testing.T) {
	files, err := filepath.Glob("../web/ui/js/*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("the dashboard's modules: %v %v", files, err)
	}
	own := regexp.MustCompile(`new\s+(WebSocket|EventSource)\b|/sub/|/pub/|/req/|/presence/|mercury\.v1`)
	imports := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := own.Find(src); m != nil {
			t.Errorf("%s has %q: the live parts go through mercury.js", f, m)
		}
		imports += strings.Count(string(src), `from '/mercury.js'`)
	}
	if imports != 1 {
		t.Errorf("%d modules import '/mercury.js', want one (live.js)", imports)
	}
}
