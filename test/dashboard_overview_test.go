package test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// TestDashboardOverviewShowsTheBroker: the overview shows the real
// counters, the busiest topic and the open connections, and its Close
// button closes the chosen connection, whose client is told why.
func TestDashboardOverviewShowsTheBroker(t *testing.T) {
	b := startBroker(t)
	agent := dial(t, b.WS+"/sub/livesys/42", nil)
	other := dial(t, b.WS+"/sub/other", nil)
	pub := dial(t, b.WS+"/pub/livesys/42", nil)
	ctx := context.Background()
	for i := range 5 {
		if err := pub.WriteText(ctx, `{"cmd":"reboot"}`); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, agent); got != `{"cmd":"reboot"}` {
			t.Fatalf("message %d: %q", i, got)
		}
	}
	// The id of the connection to close, as the API gives it.
	resp, err := http.Get(b.HTTP + "/api/connections")
	if err != nil {
		t.Fatal(err)
	}
	var conns []struct{ ID, Topic string }
	err = json.NewDecoder(resp.Body).Decode(&conns)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, c := range conns {
		if c.Topic == "/other" {
			id = c.ID
		}
	}
	if id == "" {
		t.Fatalf("no /other connection in %+v", conns)
	}

	br := newBrowser(t, b.HTTP)
	br.open("#/overview")
	br.waitJS("the counters", `(() => {
		const s = document.querySelector("#overview-stats").textContent;
		return /Connections\s*3/.test(s) && s.includes("5 in all");
	})()`)
	br.waitText("#overview-topics", "/livesys/42")
	br.waitText("#overview-connections", "/other")
	br.screenshot(t.Name() + "-before")

	// The page asks for a confirmation, a native dialog: answered yes.
	br.run("answer confirmations yes", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(() => { window.confirm = () => true; return true })()`)(ctx, tg)
		return err
	}))
	br.click(`#overview-connections button[aria-label="Close connection ` + id + `"]`)
	br.waitText("#live", "Connection "+id+" closed.")
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = other.Read(rctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "closed by an administrator" {
		t.Fatalf("the closed client got %v", err)
	}
	br.waitJS("the row gone", `!document.querySelector("#overview-connections").textContent.includes("/other")`)
	// The others stay.
	if err := pub.WriteText(ctx, `{"cmd":"update"}`); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, agent); got != `{"cmd":"update"}` {
		t.Fatalf("after the close: %q", got)
	}
	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
