package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/client"
)

// haproxyPath is Debian's haproxy, the proxy of examples/cluster.
const haproxyPath = "/usr/sbin/haproxy"

// requireHAProxy skips a test when haproxy is missing, except in CI,
// where that is a failure.
func requireHAProxy(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(haproxyPath); err == nil {
		return
	}
	msg := "haproxy is needed at " + haproxyPath + " (apt-get install haproxy)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startHAProxy runs haproxy with config until the test ends, once it
// accepts connections on addr.
func startHAProxy(t testing.TB, config string, addr string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	cmd := exec.Command(haproxyPath, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("haproxy logs:\n%s", logs)
		}
	})
	waitFor(t, "haproxy listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// fromAddr is an HTTP client whose connections leave from the loopback
// address ip (127.0.0.2 …), as a client on another machine would.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// connectionsByAddress counts the broker's connections by the client
// address /api/connections shows, and by topic.
func connectionsByAddress(t testing.TB, base string) (byIP map[string]int, byTopic map[string]string) {
	t.Helper()
	resp, err := http.Get(base + "/api/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cs []struct {
		Remote string `json:"remote"`
		Topic  string `json:"topic"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		t.Fatal(err)
	}
	byIP, byTopic = map[string]int{}, map[string]string{}
	for _, c := range cs {
		host, _, err := net.SplitHostPort(c.Remote)
		if err != nil {
			host = c.Remote
		}
		byIP[host]++
		byTopic[c.Topic] = host
	}
	return byIP, byTopic
}

// TestBehindHAProxy puts Debian's haproxy in front of the broker, as
// examples/cluster does: 1,500 WebSocket clients from five addresses come
// through the PROXY protocol (send-proxy-v2), a few more through
// X-Forwarded-For (option forwardfor). Each is served, counted against
// the per-address limit and shown in /api/connections with its own
// address; a client that forges X-Forwarded-For, through the proxy or
// directly to the broker, is not believed.
func TestBehindHAProxy(t *testing.T) {
	requireHAProxy(t)
	const addrs, perAddr = 5, 300
	// The per-address limit is exactly what each address opens: counted
	// against the proxy's address, all but 300 would be refused.
	b := startBroker(t, "--trusted-proxies", "127.0.0.1", "--proxy-protocol",
		"--max-connections-per-ip", fmt.Sprint(perAddr), "--max-connections", "5000", "--ping-interval", "10m")
	pp, ff := freePort(t), freePort(t)
	startHAProxy(t, fmt.Sprintf(`global
    maxconn 5000
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend proxied
    bind %[1]s
    default_backend proxied
backend proxied
    server broker %[3]s send-proxy-v2
frontend forwarded
    bind %[2]s
    option forwardfor
    default_backend forwarded
backend forwarded
    server broker %[3]s
`, pp, ff, b.Listen), pp)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var conns []*client.Conn
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	errs := make(chan error, addrs)
	var wg sync.WaitGroup
	for i := range addrs {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		opts := &client.Options{HTTPClient: fromAddr(ip)}
		wg.Go(func() {
			for j := range perAddr {
				c, err := client.Dial(ctx, fmt.Sprintf("ws://%s/sub/from/%s", pp, ip), opts)
				if err != nil {
					errs <- fmt.Errorf("client %d from %s: %w", j+1, ip, err)
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// Through option forwardfor, with and without a forged header; and a
	// forger straight to the broker.
	forged := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	for _, c := range []struct {
		url, ip string
		h       http.Header
	}{
		{"ws://" + ff + "/sub/ff/plain", "127.0.0.7", nil},
		{"ws://" + ff + "/sub/ff/forged", "127.0.0.8", forged},
		{b.WS + "/sub/direct/forged", "127.0.0.9", forged},
	} {
		conn, err := client.Dial(ctx, c.url, &client.Options{HTTPClient: fromAddr(c.ip), Header: c.h})
		if err != nil {
			t.Fatalf("%s from %s: %v", c.url, c.ip, err)
		}
		conns = append(conns, conn)
	}

	byIP, byTopic := connectionsByAddress(t, b.HTTP)
	for i := range addrs {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		if byIP[ip] != perAddr {
			t.Errorf("/api/connections shows %d connections from %s, want %d", byIP[ip], ip, perAddr)
		}
	}
	for topic, want := range map[string]string{"/ff/plain": "127.0.0.7", "/ff/forged": "127.0.0.8", "/direct/forged": "127.0.0.9"} {
		if byTopic[topic] != want {
			t.Errorf("%s: client address %q, want %q", topic, byTopic[topic], want)
		}
	}
	if byIP["127.0.0.1"] != 0 || byIP["203.0.113.7"] != 0 {
		t.Errorf("connections shown from the proxy or a forged address: %v", byIP)
	}
	if !strings.Contains(b.logs.String(), "remote=127.0.0.4:") {
		t.Error("the broker's log does not name the clients' own addresses")
	}
}
