package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mercury-broker/mercury/web/client"
)

// Replay and resumption: --since, and a subscriber in envelope mode that
// picks up after the last sequence number it saw, with no gap and no
// duplicate, when its connection is cut or the broker restarts.

// replayConfig writes a config file with yaml and returns its path.
func replayConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mercury.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tcpProxy forwards connections to a broker, and cuts them on demand: a
// subscriber's connection lost while the broker keeps running.
type tcpProxy struct {
	ln      net.Listener
	backend string
	WS      string

	mu     sync.Mutex
	paused bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, backend: backend, WS: "ws://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused, backend := p.paused, p.backend
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(b, c) })
		p.wg.Go(func() { pipe(c, b) })
	}
}

// pause cuts every connection and refuses new ones until resume.
func (p *tcpProxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	p.cut()
}

func (p *tcpProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// expectEnvelopes reads --json lines and checks they carry data want[i]
// with increasing sequence numbers.
func expectEnvelopes(t *testing.T, sub *cliProc, want ...string) {
	t.Helper()
	var last uint64
	for i, w := range want {
		line := sub.line(t)
		var e client.Envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %q: %v", i, line, err)
		}
		if got := string(e.Data); got != w {
			t.Fatalf("message %d is %s, want %s (a gap or a duplicate)", i, got, w)
		}
		if e.Seq <= last {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
}

func TestCLISubSince(t *testing.T) {
	config := replayConfig(t, "buses:\n  /h:\n    history: {messages: 100, age: 1h}\n")
	b := startBroker(t, "--config", config)
	s1 := publishSeq(t, b.HTTP+"/pub/h/a", "one")
	publishSeq(t, b.HTTP+"/pub/h/b", "two")
	publishSeq(t, b.HTTP+"/pub/h/a", `{"n":3}`)

	// Raw mode: the messages after s1, then live.
	sub := startCLI(t, nil, "sub", "/h", "--since", fmt.Sprint(s1), "--count", "3", "--server", b.WS)
	for _, want := range []string{"two", `{"n":3}`} {
		if got := sub.line(t); got != want {
			t.Fatalf("replayed %q, want %q", got, want)
		}
	}
	post(t, b.HTTP+"/pub/h", "live")
	if got := sub.line(t); got != "live" {
		t.Fatalf("got %q", got)
	}
	sub.expectExit(t, 0)

	// Envelope mode, under a narrower topic.
	sub = startCLI(t, nil, "sub", "/h/a", "--since", "0", "--json", "--count", "2", "--server", b.WS)
	expectEnvelopes(t, sub, `"one"`, `{"n":3}`)
	sub.expectExit(t, 0)
}

func TestCLISubResumesAfterItsConnectionIsCut(t *testing.T) {
	config := replayConfig(t, "buses:\n  /r:\n    history: {messages: 1000, age: 1h}\n")
	b := startBroker(t, "--config", config)
	proxy := startProxy(t, b.Listen)
	sub := startCLI(t, nil, "sub", "/r", "--json", "--server", proxy.WS)
	sub.waitStderr(t, "connected to")
	for i := 1; i <= 5; i++ {
		publishSeq(t, b.HTTP+"/pub/r", fmt.Sprint(i))
	}
	expectEnvelopes(t, sub, "1", "2", "3", "4", "5")

	// Cut: the broker keeps running and publishers keep publishing.
	proxy.pause()
	sub.waitStderr(t, "reconnecting in")
	for i := 6; i <= 10; i++ {
		publishSeq(t, b.HTTP+"/pub/r", fmt.Sprint(i))
	}
	proxy.resume()
	sub.waitStderr(t, "reconnected to "+proxy.WS+"/sub/r?since=")
	publishSeq(t, b.HTTP+"/pub/r", "11")
	expectEnvelopes(t, sub, "6", "7", "8", "9", "10", "11")
}

func TestCLISubResumesAcrossADurableBrokerRestart(t *testing.T) {
	config := replayConfig(t, "buses:\n  /d:\n    durable: true\n")
	dataDir := t.TempDir()
	b := startBroker(t, "--config", config, "--data-dir", dataDir)
	proxy := startProxy(t, b.Listen)
	sub := startCLI(t, nil, "sub", "/d", "--json", "--server", proxy.WS)
	sub.waitStderr(t, "connected to")
	for i := 1; i <= 5; i++ {
		publishSeq(t, b.HTTP+"/pub/d", fmt.Sprint(i))
	}
	expectEnvelopes(t, sub, "1", "2", "3", "4", "5")

	// The subscriber is cut off; messages 6 to 8 are confirmed on disk;
	// the broker is killed; a new one starts on the same data; 9 and 10
	// are published before the subscriber is back.
	proxy.pause()
	sub.waitStderr(t, "reconnecting in")
	for i := 6; i <= 8; i++ {
		publishSeq(t, b.HTTP+"/pub/d", fmt.Sprint(i))
	}
	b.signal(syscall.SIGKILL)
	b.wait(t)
	b2 := startBrokerOn(t, b.Listen, "--config", config, "--data-dir", dataDir)
	for i := 9; i <= 10; i++ {
		publishSeq(t, b2.HTTP+"/pub/d", fmt.Sprint(i))
	}
	proxy.resume()
	sub.waitStderr(t, "reconnected to")
	publishSeq(t, b2.HTTP+"/pub/d", "11")
	expectEnvelopes(t, sub, "6", "7", "8", "9", "10", "11")
	if strings.Contains(sub.stderr.String(), "gap") {
		t.Fatalf("a gap:\n%s", sub.stderr)
	}
}
