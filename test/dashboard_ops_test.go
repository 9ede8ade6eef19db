package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/client"
)

// countRequests counts the page's requests to url.
func countRequests(br *browser, url string) int {
	n := 0
	for _, r := range br.allRequests() {
		if r == url {
			n++
		}
	}
	return n
}

// TestDashboardPublishChecksTheSchema: the publish form delivers a valid
// message; an invalid one is refused in the browser with the schema's
// errors and never sent; "Send anyway" shows the broker's own refusal.
// A Go subscriber sees only the valid messages.
func TestDashboardPublishChecksTheSchema(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, busesConfig))
	sub := dial(t, b.WS+"/sub/livesys", nil)
	br := newBrowser(t, b.HTTP)
	br.open("#/publish")
	br.fill("#publish-topic", "/livesys/42")
	br.waitText("#publish-schema", "Bus /livesys: checked against livesys.json + defs.json (draft 2020-12)")

	valid := `{"cmd":"reboot","id":"6f1c1a4e-8d7b-4f5e-9a51-3c0f1e2d4b6a","sent":"2026-11-24T11:00:00Z"}`
	br.fill("#publish-payload", valid)
	br.click("#publish-send")
	br.waitText("#publish-status", "Accepted, sequence 1.")
	br.waitText("#publish-answer", `"seq": 1`)
	if got := readText(t, sub); got != valid {
		t.Fatalf("subscriber got %q, want %q", got, valid)
	}
	postURL := b.HTTP + "/pub/livesys/42"
	if n := countRequests(br, postURL); n != 1 {
		t.Fatalf("%d POSTs to %s, want 1", n, postURL)
	}

	invalid := `{"cmd":"dance","id":"42","sent":"2026-11-24T11:00:00Z"}`
	br.fill("#publish-payload", invalid)
	br.click("#publish-send")
	br.waitText("#publish-errors", "Not sent: the payload does not match the schema of bus /livesys.")
	errs := br.text("#publish-errors ul")
	for _, want := range []string{"/cmd", "reboot", "/id", "uuid"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the errors shown %q do not mention %q", errs, want)
		}
	}
	br.waitJS("the payload marked invalid", `document.querySelector("#publish-payload").getAttribute("aria-invalid") === "true"`)
	if n := countRequests(br, postURL); n != 1 {
		t.Fatalf("the invalid message was sent: %d POSTs to %s", n, postURL)
	}
	br.screenshot(t.Name() + "-refused-in-browser")

	// Sent anyway: the broker refuses it with 422 and its own details.
	br.click("#publish-anyway")
	br.waitText("#publish-status", "422")
	br.waitText("#publish-status", "(schema)")
	br.waitText("#publish-answer", `"code": "schema"`)
	if n := countRequests(br, postURL); n != 2 {
		t.Fatalf("%d POSTs to %s after sending anyway, want 2", n, postURL)
	}
	// Nothing invalid reached the subscriber: the next frame is this one.
	if resp := post(t, postURL, valid); resp.Status != 200 {
		t.Fatalf("POST: %d %s", resp.Status, resp.Body)
	}
	if got := readText(t, sub); got != valid {
		t.Fatalf("subscriber got %q, want only the valid message", got)
	}
	if errs := br.consoleErrors(func(e string) bool { return strings.Contains(e, postURL) && strings.Contains(e, "422") }); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDashboardRequeuesADeadLetter: a message that used its only attempt
// is a dead letter; the queue view shows it with its reason and payload,
// and "Requeue" gives it back to the Go puller.
func TestDashboardRequeuesADeadLetter(t *testing.T) {
	b := startBroker(t, "--config", writeConfig(t, "buses:\n  /jobs:\n    queue: {max_attempts: 1}\n"))
	puller := dial(t, b.WS+"/pull/jobs?envelope=1", nil)
	if resp := post(t, b.HTTP+"/push/jobs", `{"job":7}`); resp.Status != 200 {
		t.Fatalf("push: %d %s", resp.Status, resp.Body)
	}
	var d struct {
		ID      uint64          `json:"id"`
		Attempt int             `json:"attempt"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(readText(t, puller)), &d); err != nil || d.Attempt != 1 {
		t.Fatalf("delivery %+v, %v", d, err)
	}
	if err := puller.WriteText(context.Background(), fmt.Sprintf(`{"nack":%d,"error":"printer on fire"}`, d.ID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a dead letter", func() bool { _, _, dead := queueStats(t, b, "/jobs"); return dead == 1 })

	br := newBrowser(t, b.HTTP)
	br.open("#/queues")
	br.waitText("#queues-list", "Dead letters (1)")
	br.click(`button[data-focus-key="dead:/jobs"]`)
	br.waitText("#queues-dead", "printer on fire")
	br.click(fmt.Sprintf(`button[data-focus-key="peek:%d"]`, d.ID))
	br.waitText(fmt.Sprintf(`[data-peek="%d"]`, d.ID), `"job": 7`)
	br.screenshot(t.Name() + "-peek")
	br.click(fmt.Sprintf(`button[data-focus-key="requeue:%d"]`, d.ID))

	var again struct {
		ID      uint64          `json:"id"`
		Attempt int             `json:"attempt"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(readText(t, puller)), &again); err != nil {
		t.Fatal(err)
	}
	if again.ID != d.ID || again.Attempt != 1 || string(again.Data) != `{"job":7}` {
		t.Fatalf("after requeue %+v, want id %d, attempt 1, {\"job\":7}", again, d.ID)
	}
	br.waitText("#dead-result", `Requeue `+fmt.Sprint(d.ID)+`: {"requeued":1}`)
	br.waitText("#queues-dead", "No dead letter in this queue.")
	if err := puller.WriteText(context.Background(), fmt.Sprintf(`{"ack":%d}`, again.ID)); err != nil {
		t.Fatal(err)
	}
	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDashboardLogin: with auth on, the API answers 401 and the page asks
// for a token; with an API key it shows the queues and subscribes
// (mercury.js carries the key in the WebSocket's subprotocol, never in a
// URL); logging out forgets the key.
func TestDashboardLogin(t *testing.T) {
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "mercury.yaml")
	yaml := fmt.Sprintf("auth:\n  api_keys:\n    - name: operator\n      hash: %q\n      rights: {sub: true, pub: true, admin: true}\n", hash)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, "--config", config)
	br := newBrowser(t, b.HTTP)
	// A subscription refused for want of a credential asks for one.
	br.open("#/inspect?topic=/secret")
	br.waitJS("the login form", `!document.querySelector("#login").hidden`)
	br.waitText("#login-reason", "The broker asks for a credential (401")
	br.waitText("#inspect-panel [role=status]", "Reconnecting to /secret")
	br.screenshot(t.Name() + "-asked")

	// Logged in: the waiting subscription comes up at once, no reload.
	br.fill("#login-token", key)
	br.click("#login button[type=submit]")
	br.waitText("#inspect-panel [role=status]", "Subscribed to /secret.")
	br.waitJS("the login form hidden", `document.querySelector("#login").hidden`)
	br.waitText("#who", "Logged in with a token")
	br.waitJS("the key in sessionStorage only", fmt.Sprintf(`sessionStorage.getItem("mercury.token") === %q && localStorage.getItem("mercury.token") === null`, key))
	br.open("#/queues")
	br.waitText("#queues-list", "No queue")

	br.open("#/inspect?topic=/secret")
	br.waitText("#inspect-panel [role=status]", "Subscribed to /secret.")
	pub := dial(t, b.WS+"/pub/secret", &client.Options{Token: key})
	if err := pub.WriteText(context.Background(), `{"for":"operators"}`); err != nil {
		t.Fatal(err)
	}
	br.waitText("#inspect-messages", `"for": "operators"`)

	br.click("#logout")
	br.open("#/queues")
	br.waitJS("the login form again", `!document.querySelector("#login").hidden`)
	br.waitJS("the key forgotten", `sessionStorage.getItem("mercury.token") === null`)
	for _, r := range br.allRequests() {
		if strings.Contains(r, key) {
			t.Errorf("the key in a URL: %s", r)
		}
	}
}

// TestDashboardAuditTimeline: with the real Minion (Perl) and the bridge
// running inside the broker (minion.pg), the audit view shows one job's
// events, in order, and none of another job's.
func TestDashboardAuditTimeline(t *testing.T) {
	miniontest.RequireMinion(t)
	db := minionDB(t)
	b := startBrokerEnv(t, []string{"MERCURY_MINION_PG=" + db}, "--listen", "127.0.0.1:0", "--config", durableConfig(t), "--data-dir", t.TempDir())
	events := dial(t, b.WS+"/sub/audit/minion?envelope=1", nil)
	waitFor(t, "the bridge publishing", func() bool { return contains(b.logs.String(), "minion bridge: publishing") })
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, db, &enq, "enqueue", "2", "0")
	job, other := enq.IDs[0], enq.IDs[1]

	// Every job's events, as a Go subscriber sees them.
	types := map[int64][]string{}
	readUntil := func(last string) {
		t.Helper()
		for len(types[job]) == 0 || types[job][len(types[job])-1] != last ||
			len(types[other]) == 0 || types[other][len(types[other])-1] != last {
			in, err := client.ParseIncoming([]byte(readText(t, events)))
			if err != nil || in.Message == nil {
				t.Fatalf("frame: %+v %v", in, err)
			}
			var e minion.Event
			if err := json.Unmarshal(in.Message.Data, &e); err != nil {
				t.Fatal(err)
			}
			if e.JobID != nil {
				types[*e.JobID] = append(types[*e.JobID], e.Type)
			}
		}
	}
	readUntil("enqueued")

	br := newBrowser(t, b.HTTP)
	br.open("#/audit")
	br.fill("#audit-job", fmt.Sprint(job))
	br.click("#audit-form button[type=submit]")
	rows := func(n int) {
		t.Helper()
		br.waitJS(fmt.Sprintf("%d events", n), fmt.Sprintf(`document.querySelectorAll("#audit-timeline tbody tr").length === %d`, n))
	}
	rows(1) // replayed from the history
	br.waitText("#audit-timeline tbody tr:nth-child(1) td.type", "enqueued")

	// The job runs: its events arrive live.
	miniontest.Perl(t, db, nil, "perform")
	readUntil("finished")
	want := types[job]
	rows(len(want))
	br.waitText("#audit-status", fmt.Sprintf("Listening: %d events for job %d", len(want), job))
	var got []string
	for i := range want {
		got = append(got, strings.TrimSpace(br.text(fmt.Sprintf("#audit-timeline tbody tr:nth-child(%d) td.type", i+1))))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("timeline %v, want %v", got, want)
	}
	if !strings.Contains(br.text("#audit-timeline"), "inactive → active") {
		t.Errorf("timeline without the state change: %s", br.text("#audit-timeline"))
	}
	br.waitText("#audit-job-summary", "sleep")
	br.waitText("#audit-job-summary", "finished")
	if errs := br.consoleErrors(nil); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
