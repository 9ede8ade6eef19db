package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestDeepAndDuplicateKeyJSONRefusedOnASchemaBus(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json")})
	sub := ts.dial(t, "sub", "/livesys")
	ts.waitSubscribed(t, 1)
	pub := ts.dial(t, "pub", "/livesys/42")

	dup := `{"cmd":"shutdown",` + goodCommand[1:]             // the validator sees "reboot"
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65) // the default limit is 64
	for _, c := range []struct{ payload, at, says string }{
		{dup, "/cmd", `duplicate key "cmd" at /cmd`},
		{deep, strings.Repeat("/0", 64), "max_json_depth"},
	} {
		pub.send(t, c.payload)
		e := parseError(t, pub.nextText(t))
		if e.Error.Code != "json" || e.Error.Bus != "/livesys" || !strings.Contains(e.Error.Message, c.says) ||
			len(e.Error.Details) != 1 || e.Error.Details[0].At != c.at {
			t.Fatalf("error frame %+v, want code json saying %q at %s", e, c.says, c.at)
		}
		resp := post(t, ts, "pub", "/livesys/42", "", c.payload)
		if e := parseError(t, string(resp.Body)); resp.Status != http.StatusUnprocessableEntity || e.Error.Code != "json" {
			t.Fatalf("POST: %d %s", resp.Status, resp.Body)
		}
	}
	// The connection stays open; the subscriber got neither.
	pub.send(t, goodCommand)
	if got := sub.nextText(t); got != goodCommand {
		t.Fatalf("subscriber got %q", got)
	}
}

func TestMaxJSONDepthIsTheServers(t *testing.T) {
	ts := startServer(t, Options{Buses: testBuses(t, "livesys.json"), MaxJSONDepth: 2})
	resp := post(t, ts, "pub", "/livesys/42", "", `{"cmd":"run","args":[["x"]]}`)
	if e := parseError(t, string(resp.Body)); resp.Status != http.StatusUnprocessableEntity || e.Error.Code != "json" ||
		!strings.Contains(e.Error.Message, "deeper than 2") {
		t.Fatalf("3 deep with a limit of 2: %d %s", resp.Status, resp.Body)
	}
}
