package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// runAgent answers every request the connection gets with its name, until
// the connection ends.
func runAgent(c *client.Conn, name string) {
	go func() {
		for {
			f, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var req struct {
				Reply string `json:"reply"`
			}
			if json.Unmarshal(f.Data, &req) == nil && req.Reply != "" {
				c.WriteText(context.Background(), fmt.Sprintf(`{"reply":%q,"data":{"agent":%q}}`, req.Reply, name))
			}
		}
	}()
}

// TestClusterAgents: three brokers; agents on each; requests sent on one
// broker are answered by agents on the others; presence is seen on every
// broker, and a broker killed with kill -9 takes its agents with it.
func TestClusterAgents(t *testing.T) {
	_, b := startCluster(t, 3, "")
	watcher := dial(t, b[1].WS+"/sub/livesys?envelope=1&presence=1", nil)
	const n = 50
	for i := range n {
		c := dial(t, fmt.Sprintf("%s/sub/livesys/%d?envelope=1", b[i%3].WS, i), nil)
		runAgent(c, fmt.Sprint(i))
	}
	// The watcher on broker 1 sees every agent join, wherever it is.
	joined := map[string]bool{}
	waitFor(t, "50 joins", func() bool {
		for len(joined) < n {
			s, ok := readFrame(t, watcher, 5*time.Second)
			if !ok {
				return false
			}
			if strings.Contains(s, `"event":"join"`) && !strings.Contains(s, `"topic":"/livesys",`) {
				joined[s[strings.Index(s, `"topic"`):strings.Index(s, `,"user"`)]] = true
			}
		}
		return true
	})
	// Broker 2 learns of a join on broker 1 one NATS hop after the watcher
	// beside it, so the last agents may reach its list a moment later.
	var listed []map[string]any
	waitFor(t, "broker 2 lists the 50 agents and the watcher", func() bool {
		resp, err := http.Get(b[2].HTTP + "/presence/livesys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		listed = nil
		if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil {
			t.Fatal(err)
		}
		return len(listed) == n+1
	})

	// Agent 40 is on broker 1; ask from broker 2.
	r := post(t, b[2].HTTP+"/req/livesys/40?timeout=5s", `"who?"`)
	if r.Status != 200 || string(r.Body) != `{"agent":"40"}` {
		t.Fatalf("one agent: %d %s", r.Status, r.Body)
	}
	r = post(t, b[0].HTTP+"/req/livesys?all=1&timeout=10s", `"who?"`)
	var answers []struct{ Data struct{ Agent string } }
	if err := json.Unmarshal(r.Body, &answers); r.Status != 200 || err != nil || len(answers) != n {
		t.Fatalf("all: %d, %d answers, %v: %.300s", r.Status, len(answers), err, r.Body)
	}
	start := time.Now()
	if r := post(t, b[0].HTTP+"/req/nobody?timeout=10s", "x"); r.Status != 503 || !strings.Contains(string(r.Body), "no_responders") {
		t.Fatalf("no responders: %d %s", r.Status, r.Body)
	}
	t.Logf("no responders answered in %v", time.Since(start))

	// kill -9 broker 0: its 17 agents leave, as the watcher on broker 1 sees.
	b[0].signal(syscall.SIGKILL)
	b[0].wait(t)
	left := 0
	deadline := time.Now().Add(15 * time.Second)
	for left < 17 && time.Now().Before(deadline) {
		if s, ok := readFrame(t, watcher, time.Until(deadline)); ok && strings.Contains(s, `"event":"leave"`) {
			left++
		}
	}
	if left != 17 {
		t.Fatalf("%d agents of the killed broker seen leaving, want 17", left)
	}
	t.Logf("the killed broker's agents left after %v", time.Since(start))
	r = post(t, b[2].HTTP+"/req/livesys?all=1&timeout=10s", `"who?"`)
	if err := json.Unmarshal(r.Body, &answers); r.Status != 200 || err != nil || len(answers) != n-17 {
		t.Fatalf("all after the kill: %d, %d answers, %v", r.Status, len(answers), err)
	}
}
