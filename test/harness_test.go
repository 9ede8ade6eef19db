package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/client"
)

// mercuryBin is the broker binary built once for all tests.
var mercuryBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mercury-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	mercuryBin = filepath.Join(dir, "mercury")
	build := exec.Command("go", "build", "-o", mercuryBin, "../cmd/mercury")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if raceEnabled {
		build.Args = append(build.Args[:2], append([]string{"-race"}, build.Args[2:]...)...)
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build mercury:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			return 1
		}
	}
	return code
}

// brokerProc is a running mercury serve process.
type brokerProc struct {
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	done   chan struct{}
	exit   error
	HTTP   string // http://127.0.0.1:port (https:// with TLS)
	WS     string // ws://127.0.0.1:port (wss:// with TLS)
	Listen string // 127.0.0.1:port
}

var listeningRE = regexp.MustCompile(`msg="mercury listening" addr=(https?)://([0-9.:\[\]]+)`)

// loopbackAddr turns a wildcard listen address ("[::]:3000", "0.0.0.0:3000")
// into one to connect to.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// startBroker runs mercury serve on a free loopback port with extra args,
// and stops it when the test ends.
func startBroker(t testing.TB, args ...string) *brokerProc {
	t.Helper()
	return startBrokerOn(t, "127.0.0.1:0", args...)
}

func startBrokerOn(t testing.TB, listen string, args ...string) *brokerProc {
	t.Helper()
	return startBrokerEnv(t, nil, append([]string{"--listen", listen}, args...)...)
}

// startBrokerEnv runs mercury serve with args and extra environment
// variables ("MERCURY_X=v"); args must say where to listen.
func startBrokerEnv(t testing.TB, env []string, args ...string) *brokerProc {
	t.Helper()
	return startBrokerBin(t, mercuryBin, env, args...)
}

// startBrokerBin is startBrokerEnv with another build of mercury.
func startBrokerBin(t testing.TB, bin string, env []string, args ...string) *brokerProc {
	t.Helper()
	b := &brokerProc{logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	b.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	b.cmd.Env = append(os.Environ(), env...)
	b.cmd.Stdout = b.logs
	b.cmd.Stderr = b.logs
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exit = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		b.signal(syscall.SIGKILL)
		<-b.done
		if t.Failed() {
			t.Logf("broker logs:\n%s", b.logs)
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(b.logs.String()); m != nil {
			b.Listen = loopbackAddr(m[2])
			if m[1] == "https" {
				b.HTTP, b.WS = "https://"+b.Listen, "wss://"+b.Listen
			} else {
				b.HTTP, b.WS = "http://"+b.Listen, "ws://"+b.Listen
			}
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("broker exited (%v) before listening:\n%s", b.exit, b.logs)
		case <-deadline:
			t.Fatalf("broker not listening after 20s:\n%s", b.logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (b *brokerProc) signal(sig syscall.Signal) {
	if b.cmd.Process != nil {
		b.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit and returns its exit code.
func (b *brokerProc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("broker still running 20s after being told to stop:\n%s", b.logs)
	}
	if b.cmd.ProcessState == nil {
		t.Fatalf("no exit status: %v", b.exit)
	}
	return b.cmd.ProcessState.ExitCode()
}

// dial opens a connection with our Go client.
func dial(t testing.TB, url string, opts *client.Options) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readText(t testing.TB, c *client.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(f.Data)
}

func post(t testing.TB, url, body string) *client.Response {
	t.Helper()
	resp, err := client.Post(context.Background(), nil, url, "", []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// nodeDir holds the third-party clients (npm packages ws and wscat).
const nodeDir = "node"

// requireNode skips a test when Node.js or the npm packages are missing,
// except in CI, where that is a failure.
func requireNode(t testing.TB) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errWS := os.Stat(filepath.Join(nodeDir, "node_modules", "ws"))
	if errNode == nil && errWS == nil {
		return
	}
	msg := "Node.js and the ws package are needed: run 'npm ci --prefix test/node'"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// nodeEvent is one line printed by node/wsclient.js.
type nodeEvent struct {
	Open     bool    `json:"open"`
	Protocol string  `json:"protocol"`
	Text     *string `json:"text"`
	Binary   *string `json:"binary"`
	Close    *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"close"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// nodeClient is a running node/wsclient.js.
type nodeClient struct {
	stdin  io.WriteCloser
	events chan nodeEvent
}

func startNodeClient(t testing.TB, url string, args ...string) *nodeClient {
	t.Helper()
	requireNode(t)
	cmd := exec.Command("node", append([]string{filepath.Join(nodeDir, "wsclient.js"), url}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nc := &nodeClient{stdin: stdin, events: make(chan nodeEvent, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(nc.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var ev nodeEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("node client printed %q: %v", sc.Text(), err)
				continue
			}
			nc.events <- ev
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("node client stderr:\n%s", stderr.String())
		}
	})
	return nc
}

func (nc *nodeClient) next(t testing.TB) nodeEvent {
	t.Helper()
	select {
	case ev, ok := <-nc.events:
		if !ok {
			t.Fatal("node client exited")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the node client within 10s")
	}
	panic("unreachable")
}

// waitOpen waits for the connection to open.
func (nc *nodeClient) waitOpen(t testing.TB) {
	t.Helper()
	if ev := nc.next(t); !ev.Open {
		t.Fatalf("node client: want open, got %+v", ev)
	}
}

func (nc *nodeClient) nextText(t testing.TB) string {
	t.Helper()
	ev := nc.next(t)
	if ev.Text == nil {
		t.Fatalf("node client: want a text frame, got %+v", ev)
	}
	return *ev.Text
}

func (nc *nodeClient) send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(nc.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
