package nats

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The embedded NATS servers' and clients' long-lived helpers end
		// a moment after Shutdown.
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
	)
}

var (
	clusterOnce sync.Once
	shared      *natstest.Cluster
	names       atomic.Int64
)

// testLogger logs to stderr with -v, nowhere otherwise.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// node is one broker on the backplane.
type node struct {
	b  *broker.Broker
	bp *Backplane
}

// startNodes starts n brokers sharing a fresh cluster name on c, each
// connected to a different NATS server.
func startNodes(t testing.TB, c *natstest.Cluster, n int, policies []broker.Policy) []*node {
	t.Helper()
	name := clusterName()
	var nodes []*node
	for i := range n {
		nodes = append(nodes, startNode(t, c, name, i, policies))
	}
	return nodes
}

// clusterName returns a cluster name no other test uses.
func clusterName() string { return fmt.Sprintf("t%d-%d", os.Getpid()%100000, names.Add(1)) }

func startNode(t testing.TB, c *natstest.Cluster, name string, i int, policies []broker.Policy) *node {
	t.Helper()
	urls := c.URLs()
	urls = append(urls[i%len(urls):], urls[:i%len(urls)]...) // a different server first
	return startNodeAt(t, name, urls, policies)
}

// startNodeAt starts a broker of cluster name connected to NATS at urls.
func startNodeAt(t testing.TB, name string, urls []string, policies []broker.Policy) *node {
	t.Helper()
	bp, err := Connect(Options{URLs: urls, Name: name, Logger: testLogger(), Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := broker.NewPolicies(policies)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Backplane: bp, Policies: ps, Logger: testLogger()})
	if err != nil {
		bp.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); bp.Close() })
	return &node{b: b, bp: bp}
}

// recorder is a Receiver that keeps what it gets.
type recorder struct {
	mu   sync.Mutex
	msgs []*broker.Message
}

func (r *recorder) Deliver(m *broker.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) got() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*broker.Message(nil), r.msgs...)
}

func (r *recorder) waitN(t *testing.T, n int) []*broker.Message {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(r.got()) >= n })
	return r.got()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cluster(t *testing.T) *natstest.Cluster {
	t.Helper()
	return natstest.Start(t)
}
