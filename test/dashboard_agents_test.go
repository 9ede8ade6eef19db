package test

import (
	"strings"
	"testing"
)

// TestDashboardAgents: the Agents view lists who is connected under a
// topic, live, and sends a request whose answer it shows.
func TestDashboardAgents(t *testing.T) {
	b := startBroker(t)
	runAgent(dial(t, b.WS+"/sub/livesys/42?envelope=1", nil), "42")
	br := newBrowser(t, b.HTTP)
	br.open("#/agents")
	br.fill("#agents-topic", "/livesys")
	br.click("#agents-form button[type=submit]")
	br.waitText("#agents-status", "Watching /livesys.")
	br.waitText("#agents-rows", "/livesys/42")

	// Live: an agent that comes shows up, and goes away when it leaves.
	late := dial(t, b.WS+"/sub/livesys/43?envelope=1", nil)
	runAgent(late, "43")
	br.waitText("#agents-rows", "/livesys/43")
	late.CloseNow()
	br.waitJS("agent 43 gone", `!document.querySelector("#agents-rows").textContent.includes("/livesys/43")`)

	br.fill("#agents-data", `"who?"`)
	br.click("#agents-send")
	br.waitText("#agents-answer", `"agent": "42"`)
	br.click("#agents-all")
	br.fill("#agents-timeout", "1s")
	br.click("#agents-send")
	br.waitText("#agents-answer-status", "1 answer(s).")

	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
