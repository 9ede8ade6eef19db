package test

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"

	"github.com/mercury-broker/mercury/web/client"
)

// A broker restarted without a data directory starts its sequence numbers
// afresh. A subscriber that was at seq 5 comes back when the new broker
// has given out 1 to 6: it resumes with the epoch of its position, is
// told of the reset, and gets all six rather than only the sixth.
func TestCLISubIsToldOfARestartWithoutADataDirectory(t *testing.T) {
	config := replayConfig(t, "buses:\n  /v:\n    history: {messages: 100, age: 1h}\n")
	b := startBroker(t, "--config", config)
	proxy := startProxy(t, b.Listen)
	sub := startCLI(t, nil, "sub", "/v", "--json", "--server", proxy.WS)
	sub.waitStderr(t, "connected to")
	for i := 1; i <= 5; i++ {
		publishSeq(t, b.HTTP+"/pub/v", fmt.Sprint(i))
	}
	expectEnvelopes(t, sub, "1", "2", "3", "4", "5")

	proxy.pause()
	sub.waitStderr(t, "reconnecting in")
	b.signal(syscall.SIGKILL)
	b.wait(t)
	b2 := startBrokerOn(t, b.Listen, "--config", config)
	for i := 1; i <= 6; i++ {
		publishSeq(t, b2.HTTP+"/pub/v", fmt.Sprint(10+i))
	}
	proxy.resume()
	sub.waitStderr(t, "reconnected to")
	var notice struct{ Gap *client.Gap }
	if line := sub.line(t); json.Unmarshal([]byte(line), &notice) != nil || notice.Gap == nil || !notice.Gap.Reset {
		t.Fatalf("first line after the restart %q, want a gap that resets", line)
	}
	expectEnvelopes(t, sub, "11", "12", "13", "14", "15", "16")
}
