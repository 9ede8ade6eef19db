package test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// nodeAgent is an agent written as users write them: Node 20's own
// WebSocket, which never sends a ping. It answers each request with
// {"pid":…} and prints "open" once connected.
const nodeAgent = `
const ws = new WebSocket(process.argv[1]);
ws.onopen = () => console.log('open');
ws.onmessage = (ev) => {
  const f = JSON.parse(ev.data);
  if (f.reply) ws.send(JSON.stringify({reply: f.reply, data: {pid: process.pid, got: f.data}}));
};
ws.onclose = (ev) => { console.log('closed ' + ev.code); process.exit(0); };
`

// TestNodeAgentAnswersAfterSilence: a Node agent that never pings stays
// connected through several ping intervals of silence, then answers.
func TestNodeAgentAnswersAfterSilence(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is needed")
		}
		t.Skip("node is not installed")
	}
	b := startBroker(t, "--ping-interval", "500ms")
	cmd := exec.Command("node", "--experimental-websocket", "-e", nodeAgent, b.WS+"/sub/livesys/42?envelope=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "open" {
		t.Fatalf("node agent: %q", lines.Text())
	}
	time.Sleep(2 * time.Second) // silence: four ping intervals
	r := post(t, b.HTTP+"/req/livesys?timeout=5s", `"uptime?"`)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"got":"uptime?"`) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
