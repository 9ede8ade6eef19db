package test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// The Perl broker's clients are raw WebSocket clients; these tests drive
// the real binary with a third-party one (Node's ws) and with our own.

func TestThirdPartySubscriberGetsHierarchy(t *testing.T) {
	b := startBroker(t)
	parent := startNodeClient(t, b.WS+"/sub/livesys")
	parent.waitOpen(t)
	child := startNodeClient(t, b.WS+"/sub/livesys/42")
	child.waitOpen(t)
	lookalike := startNodeClient(t, b.WS+"/sub/livesysX")
	lookalike.waitOpen(t)

	pub := dial(t, b.WS+"/pub/livesys/42", nil)
	if err := pub.WriteText(context.Background(), `{"cmd":"reboot"}`); err != nil {
		t.Fatal(err)
	}
	if got := parent.nextText(t); got != `{"cmd":"reboot"}` {
		t.Fatalf("/sub/livesys got %q", got)
	}
	if got := child.nextText(t); got != `{"cmd":"reboot"}` {
		t.Fatalf("/sub/livesys/42 got %q", got)
	}
	// Sent from another connection only now: nothing orders two
	// publishers' messages but the order the broker receives them in.
	if resp := post(t, b.HTTP+"/pub/livesys", "to all"); resp.Status != 200 || len(resp.Body) != 0 {
		t.Fatalf("POST = %d %q", resp.Status, resp.Body)
	}
	if got := parent.nextText(t); got != "to all" {
		t.Fatalf("/sub/livesys got %q", got)
	}
	// The child must not get the parent's publish, nor the look-alike anything.
	post(t, b.HTTP+"/pub/livesysX", "marker")
	if got := lookalike.nextText(t); got != "marker" {
		t.Fatalf("/sub/livesysX got %q before its own marker", got)
	}
	post(t, b.HTTP+"/pub/livesys/42", "marker")
	if got := child.nextText(t); got != "marker" {
		t.Fatalf("/sub/livesys/42 got %q (a parent publish?)", got)
	}
}

func TestThirdPartyPublisherAndBinaryFrames(t *testing.T) {
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/bytes", nil)
	pub := startNodeClient(t, b.WS+"/pub/bytes")
	pub.waitOpen(t)
	pub.send(t, "binary:ff008041")
	pub.send(t, "héllo")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := sub.Read(ctx)
	if err != nil || !f.Binary || hex.EncodeToString(f.Data) != "ff008041" {
		t.Fatalf("got binary=%v %x (%v), want binary ff008041", f.Binary, f.Data, err)
	}
	if got := readText(t, sub); got != "héllo" {
		t.Fatalf("got %q", got)
	}

	nodeSub := startNodeClient(t, b.WS+"/sub/bytes")
	nodeSub.waitOpen(t)
	raw := dial(t, b.WS+"/pub/bytes", nil)
	raw.WriteBinary(context.Background(), []byte{0xff, 0x00, 0x80, 0x41})
	if ev := nodeSub.next(t); ev.Binary == nil || *ev.Binary != "ff008041" {
		t.Fatalf("node subscriber got %+v, want binary ff008041", ev)
	}
	resp, err := client.Post(context.Background(), nil, b.HTTP+"/pub/bytes", "text/plain; charset=utf-8", []byte("é"), nil)
	if err != nil || resp.Status != 200 {
		t.Fatal(resp, err)
	}
	if got := nodeSub.nextText(t); got != "é" {
		t.Fatalf("POSTed é arrived as %x", got)
	}
}

func TestThirdPartyBusPeers(t *testing.T) {
	b := startBroker(t)
	plain := startNodeClient(t, b.WS+"/bus/room")
	plain.waitOpen(t)
	echo := startNodeClient(t, b.WS+"/bus/room?echo=1")
	echo.waitOpen(t)
	stranger := startNodeClient(t, b.WS+"/bus/hall")
	stranger.waitOpen(t)

	plain.send(t, "hi from plain")
	if got := echo.nextText(t); got != "hi from plain" {
		t.Fatalf("echo peer got %q", got)
	}
	echo.send(t, "hi from echo")
	if got := echo.nextText(t); got != "hi from echo" {
		t.Fatalf("echo peer got %q of its own frame", got)
	}
	if got := plain.nextText(t); got != "hi from echo" {
		t.Fatalf("plain peer got %q (its own frame?)", got)
	}
	post(t, b.HTTP+"/bus/room", "posted")
	for _, p := range []*nodeClient{plain, echo} {
		if got := p.nextText(t); got != "posted" {
			t.Fatalf("got %q", got)
		}
	}
	post(t, b.HTTP+"/bus/hall", "marker")
	if got := stranger.nextText(t); got != "marker" {
		t.Fatalf("stranger got %q before its own marker", got)
	}
}

func TestThirdPartyPullersRoundRobin(t *testing.T) {
	b := startBroker(t)
	var ps []*nodeClient
	for range 3 {
		p := startNodeClient(t, b.WS+"/pull/jobs")
		p.waitOpen(t)
		ps = append(ps, p)
	}
	pusher := startNodeClient(t, b.WS+"/push/jobs")
	pusher.waitOpen(t)
	for i := 1; i <= 7; i++ {
		pusher.send(t, fmt.Sprintf("m%d", i))
	}
	want := [][]string{{"m1", "m4", "m7"}, {"m2", "m5"}, {"m3", "m6"}}
	for i, p := range ps {
		for _, w := range want[i] {
			if got := p.nextText(t); got != w {
				t.Fatalf("puller %c got %q, want %q", 'A'+i, got, w)
			}
		}
	}
}

func TestThirdPartyPusherIsPausedByAFullQueue(t *testing.T) {
	b := startBroker(t, "--queue-limit", "1")
	pusher := startNodeClient(t, b.WS+"/push/full")
	pusher.waitOpen(t)
	pusher.send(t, "fits")
	pusher.send(t, "overflows")
	// Paused, not refused: no error frame, no close.
	select {
	case ev := <-pusher.events:
		t.Fatalf("pusher of a full queue got %+v", ev)
	case <-time.After(500 * time.Millisecond):
	}
	puller := dial(t, b.WS+"/pull/full", nil)
	for _, want := range []string{"fits", "overflows"} {
		if got := readText(t, puller); got != want {
			t.Fatalf("puller got %q, want %q", got, want)
		}
	}
	pusher.send(t, "after the pause") // the connection is still open
	if got := readText(t, puller); got != "after the pause" {
		t.Fatalf("puller got %q", got)
	}
}

func TestThirdPartyOriginChecks(t *testing.T) {
	b := startBroker(t, "--allow-origin", "example.com")
	for _, c := range []struct {
		origin string
		ok     bool
	}{
		{"http://example.com", true},
		{"http://example.com.evil.net", false},
		{"http://notexample.com", false},
		{"", true}, // not a browser: its credential decides
	} {
		var args []string
		if c.origin != "" {
			args = []string{"--origin", c.origin}
		}
		nc := startNodeClient(t, b.WS+"/sub/x", args...)
		ev := nc.next(t)
		if c.ok && !ev.Open {
			t.Errorf("origin %q refused: %+v", c.origin, ev)
		}
		if !c.ok && (ev.Status != 403 || !strings.Contains(ev.Body, "Origin check failed")) {
			t.Errorf("origin %q: got %+v, want 403 Origin check failed", c.origin, ev)
		}
	}
}

// wscat is the tool people reach for; it must just work.
func TestWscat(t *testing.T) {
	requireNode(t)
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/cli", nil)
	cmd := exec.Command(filepath.Join(nodeDir, "node_modules", ".bin", "wscat"), "-c", b.WS+"/pub/cli", "-x", `{"cmd":"reboot"}`, "-w", "1")
	stdin, _ := cmd.StdinPipe() // wscat quits at once when its stdin is closed
	defer stdin.Close()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wscat: %v\n%s", err, out)
	}
	if got := readText(t, sub); got != `{"cmd":"reboot"}` {
		t.Fatalf("got %q", got)
	}

	// wscat as a subscriber: without a terminal it prints each message on a
	// line of its own, and nothing else.
	listen := exec.Command(filepath.Join(nodeDir, "node_modules", ".bin", "wscat"), "--no-color", "-c", b.WS+"/sub/cli")
	in, _ := listen.StdinPipe()
	out, _ := listen.StdoutPipe()
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		in.Close()
		listen.Process.Kill()
		for range lines {
		}
		listen.Wait()
	}()
	// Probe until wscat is subscribed, then check a message arrives intact.
	deadline := time.After(10 * time.Second)
probing:
	for {
		post(t, b.HTTP+"/pub/cli/probe", "probe")
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("wscat exited")
			}
			if l == "probe" {
				break probing
			}
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("wscat never printed a probe")
		}
	}
	post(t, b.HTTP+"/pub/cli/42", `{"msg":"hello wscat"}`)
	for l := range lines {
		if l == "probe" {
			continue
		}
		if l != `{"msg":"hello wscat"}` {
			t.Fatalf("wscat printed %q", l)
		}
		return
	}
	t.Fatal("wscat exited before printing the message")
}
