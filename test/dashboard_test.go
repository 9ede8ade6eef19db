package test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// apiStatus returns the status of GET path on the broker.
func apiStatus(t *testing.T, b *brokerProc, path string) int {
	t.Helper()
	resp, err := http.Get(b.HTTP + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDashboardLoads: the dashboard at / loads every view from the broker
// alone — no request to any other host — with no console error, and each
// view shows what the broker serves (or says clearly that it does not).
func TestDashboardLoads(t *testing.T) {
	b := startBroker(t)
	// The overview's routes: a 404 from one the broker lacks is a failed
	// request the page expects, and must say so.
	missing := map[string]bool{}
	for _, p := range []string{"/api/overview", "/api/topics", "/api/connections"} {
		missing[p] = apiStatus(t, b, p) == http.StatusNotFound
	}
	br := newBrowser(t, b.HTTP)
	br.open("")
	br.waitText("nav.views a[aria-current=page]", "Overview")
	for path, gone := range missing {
		box := map[string]string{"/api/overview": "#overview-stats", "/api/topics": "#overview-topics", "/api/connections": "#overview-connections"}[path]
		if gone {
			br.waitText(box, "Not available: this broker does not serve GET "+path+" (404)")
		} else {
			br.waitJS(box+" filled", `document.querySelector("`+box+`").children.length > 0 && !document.querySelector("`+box+`").textContent.includes("Not available")`)
		}
	}
	for _, v := range []struct{ hash, link, heading string }{
		{"#/inspect", "Inspector", "Topic inspector"}, {"#/publish", "Publish", "Publish"}, {"#/queues", "Queues", "Queues"},
		{"#/audit", "Audit", "Audit"}, {"#/overview", "Overview", "Overview"},
	} {
		br.click(`nav.views a[href="` + v.hash + `"]`)
		br.waitText("nav.views a[aria-current=page]", v.link)
		br.waitJS(v.heading+" focused", `document.activeElement && document.activeElement.tagName === "H1" && document.activeElement.textContent.startsWith("`+v.heading+`")`)
	}
	br.waitText("#queues-list", "No queue")
	// By keyboard: the first Tab reaches the skip link, Enter moves the
	// focus to the content.
	br.run("a blank page", chromedp.Navigate("about:blank"))
	br.open("#/overview")
	br.run("tab to the skip link", chromedp.KeyEvent("\t"))
	br.waitJS("the skip link focused", `document.activeElement && document.activeElement.classList.contains("skip")`)
	br.run("follow the skip link", chromedp.KeyEvent("\r"))
	br.waitJS("the content focused", `document.activeElement && document.activeElement.id === "main"`)
	// The theme toggle: auto → light → dark, kept in localStorage.
	br.click("#theme")
	br.click("#theme")
	br.waitJS("dark theme", `document.documentElement.dataset.theme === "dark" && localStorage.getItem("mercury.theme") === "dark"`)

	if errs := br.consoleErrors(func(e string) bool {
		for path, gone := range missing {
			if gone && strings.Contains(e, b.HTTP+path) && strings.Contains(e, "404") {
				return true
			}
		}
		return false
	}); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	if foreign := br.foreignRequests(); len(foreign) > 0 {
		t.Errorf("requests to other hosts: %v", foreign)
	}
	reqs := br.allRequests()
	for _, want := range []string{b.HTTP + "/", b.HTTP + "/ui/app.css", b.HTTP + "/ui/js/main.js", b.HTTP + "/ui/vendor/json-schema/index.js", b.HTTP + "/mercury.js"} {
		found := false
		for _, r := range reqs {
			found = found || r == want
		}
		if !found {
			t.Errorf("no request for %s: %v", want, reqs)
		}
	}
}

// TestDashboardInspectorShowsPublishedMessages: a subscription made in the
// inspector receives what a Go client publishes, as pretty JSON with its
// topic and sequence number; text stays text; pause holds messages back,
// the filter narrows them.
func TestDashboardInspectorShowsPublishedMessages(t *testing.T) {
	b := startBroker(t)
	br := newBrowser(t, b.HTTP)
	br.open("#/inspect")
	br.fill("#inspect-topic", "/livesys")
	br.click("#inspect-form button[type=submit]")
	br.waitText("#inspect-panel [role=status]", "Subscribed to /livesys.")

	pub := dial(t, b.WS+"/pub/livesys/42", nil)
	ctx := context.Background()
	if err := pub.WriteText(ctx, `{"cmd":"reboot","n":42}`); err != nil {
		t.Fatal(err)
	}
	br.waitText("#inspect-messages", `"cmd": "reboot"`)
	head := br.text("#inspect-messages li .msg-head")
	if !contains(head, "/livesys/42") || !contains(head, "seq 1") || !contains(head, "JSON") {
		t.Errorf("message header %q: want the topic, seq 1 and JSON", head)
	}
	if err := pub.WriteText(ctx, "plain words"); err != nil {
		t.Fatal(err)
	}
	br.waitText("#inspect-messages li:nth-child(2) pre.text", "plain words")

	// Paused: the message waits; resumed: it shows.
	br.click("#inspect-pause")
	if err := pub.WriteText(ctx, `{"cmd":"update"}`); err != nil {
		t.Fatal(err)
	}
	br.waitText("#inspect-count", "1 waiting while paused")
	if strings.Contains(br.text("#inspect-messages"), "update") {
		t.Error("a message showed while paused")
	}
	br.click("#inspect-pause")
	br.waitText("#inspect-messages", `"cmd": "update"`)

	// The filter keeps what contains its text.
	br.fill("#inspect-filter", "plain")
	br.waitJS("one message shown", `document.querySelectorAll("#inspect-messages li").length === 1`)
	br.waitText("#inspect-messages", "plain words")
	br.fill("#inspect-filter", "")
	br.waitJS("three messages shown", `document.querySelectorAll("#inspect-messages li").length === 3`)

	// Copy puts the payload on the clipboard.
	br.click("#inspect-messages li:first-child button")
	br.waitText("#live", "Message 1 copied.")

	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
