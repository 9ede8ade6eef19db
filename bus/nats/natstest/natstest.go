// Package natstest runs a real NATS JetStream cluster of three servers on
// loopback, for tests, each server with its own store directory: by
// default github.com/nats-io/nats-server/v2 embedded in-process; with env
// MERCURY_TEST_NATS_BIN set (e.g. /usr/sbin/nats-server, Debian's 2.9),
// processes of that binary, so the same tests run against the NATS users
// have installed. A server can be stopped and started again on the same
// ports, as a node restart.
package natstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Cluster is a running three-server JetStream cluster.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server
	bin     string     // the nats-server binary, or "" for embedded servers
	procs   []*process // the servers started from bin
}

// Size is the number of servers in a Cluster.
const Size = 3

// Start starts a cluster and stops it when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*Size)
	var routes []string
	for i := range Size {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[Size+i]))
	}
	dir := t.TempDir()
	c := &Cluster{t: t, bin: binary(t)}
	for i := range Size {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			// Clients keep to the URLs they were given (a Proxy's), not
			// the servers' own addresses the cluster would advertise.
			Cluster: server.ClusterOpts{Name: "mercury-test", Host: "127.0.0.1", Port: ports[Size+i], NoAdvertise: true},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:   true, NoSigs: true,
		})
	}
	c.servers = make([]*server.Server, Size)
	c.procs = make([]*process, Size)
	for i := range Size {
		c.startServer(i)
	}
	t.Cleanup(c.shutdown)
	for i := range Size {
		c.waitReady(i)
	}
	c.WaitJetStream()
	return c
}

// freePorts returns n ports free on loopback now, below the range the
// kernel picks from for outgoing connections: a port from that range may
// be taken by some client's connection before the server binds it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	low := ephemeralLow()
	var lns []net.Listener
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no %d free ports on loopback below %d", n, low)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(low-10000)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// ephemeralLow returns the lowest port of the kernel's range for
// outgoing connections.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, err := strconv.Atoi(f[0]); err == nil && low > 11000 {
				return low
			}
		}
	}
	return 32768
}

func (c *Cluster) startServer(i int) {
	c.t.Helper()
	if c.bin != "" {
		pr := startProcess(c.t, c.bin, c.opts[i])
		c.mu.Lock()
		c.procs[i] = pr
		c.mu.Unlock()
		return
	}
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatalf("nats server n%d: %v", i+1, err)
	}
	s.Start()
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// waitReady waits until server i takes clients.
func (c *Cluster) waitReady(i int) {
	c.t.Helper()
	c.mu.Lock()
	s, pr := c.servers[i], c.procs[i]
	c.mu.Unlock()
	ready := false
	if pr != nil {
		ready = pr.ready(10 * time.Second)
	} else if s != nil {
		ready = s.ReadyForConnections(10 * time.Second)
	}
	if !ready && pr != nil {
		c.t.Fatalf("nats server n%d (%s) not ready; its log:\n%s", i+1, c.bin, pr.tail())
	}
	if !ready {
		c.t.Fatalf("nats server n%d not ready", i+1)
	}
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	servers := append([]*server.Server(nil), c.servers...)
	procs := append([]*process(nil), c.procs...)
	c.mu.Unlock()
	for _, pr := range procs {
		if pr != nil {
			pr.stop()
		}
	}
	for _, s := range servers {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}

// URLs returns the client URLs of the servers.
func (c *Cluster) URLs() []string {
	var out []string
	for _, o := range c.opts {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return out
}

// URL returns the client URL of server i (0-based).
func (c *Cluster) URL(i int) string { return c.URLs()[i] }

// Stop shuts server i down.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s, pr := c.servers[i], c.procs[i]
	c.servers[i], c.procs[i] = nil, nil
	c.mu.Unlock()
	if pr != nil {
		pr.stop()
	}
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts server i again, on the same ports and store, and waits
// until the cluster serves JetStream.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.StartAgain(i)
	c.WaitJetStream()
}

// StartAgain starts server i again, on the same ports and store, without
// waiting for JetStream (which needs a majority of the servers).
func (c *Cluster) StartAgain(i int) {
	c.t.Helper()
	c.startServer(i)
	c.waitReady(i)
}

// WaitJetStream waits until JetStream answers through every running server.
// With every server running, it also waits until a stream can be placed
// on all of them: JetStream answers before the servers know each other
// as peers (NATS 2.9 takes a while), and a replicated stream made then
// finds "no suitable peers for placement".
func (c *Cluster) WaitJetStream() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	running := 0
	for i, o := range c.opts {
		c.mu.Lock()
		up := c.servers[i] != nil || c.procs[i] != nil
		c.mu.Unlock()
		if !up {
			continue
		}
		running++
		for {
			if err := jetStreamAnswers(fmt.Sprintf("nats://127.0.0.1:%d", o.Port)); err == nil {
				break
			} else if time.Now().After(deadline) {
				c.t.Fatalf("JetStream not answering through n%d: %v", i+1, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if running < Size {
		return
	}
	for {
		err := placesOnAll(c.URL(0))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("JetStream cannot place a stream on all %d servers: %v", Size, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// placesOnAll makes and deletes a stream kept by every server.
func placesOnAll(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name := "NATSTEST_PROBE_" + nuid.Next()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"natstest.probe." + name}, Storage: jetstream.MemoryStorage, Replicas: Size,
	}); err != nil {
		return err
	}
	return js.DeleteStream(ctx, name)
}

func jetStreamAnswers(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}
