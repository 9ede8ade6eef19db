package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/nats/natstest"
	"github.com/mercury-broker/mercury/web/auth"
	"github.com/mercury-broker/mercury/web/client"
)

// Several brokers as one: three `mercury serve --cluster` processes on
// loopback, sharing a three-server NATS JetStream cluster that the test
// starts itself: embedded (nothing to install, nothing to skip), or from
// the nats-server binary named by MERCURY_TEST_NATS_BIN, as .ci/run does a
// second time with Debian's 2.9 (natstest).

var clusterNames atomic.Int64

// startCluster starts a NATS cluster and n brokers on it with config
// (YAML, may be empty).
func startCluster(t *testing.T, n int, config string) (*natstest.Cluster, []*brokerProc) {
	t.Helper()
	nc := natstest.Start(t)
	path := filepath.Join(t.TempDir(), "mercury.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("e2e-%d-%d", os.Getpid()%100000, clusterNames.Add(1))
	var brokers []*brokerProc
	for range n {
		brokers = append(brokers, startBroker(t, "--cluster", strings.Join(nc.URLs(), ","), "--cluster-name", name, "--config", path))
	}
	return nc, brokers
}

func readFrame(t testing.TB, c *client.Conn, within time.Duration) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	f, err := c.Read(ctx)
	if err != nil {
		return "", false
	}
	return string(f.Data), true
}

// TestClusterPubSubAndBus: a message published on any broker reaches every
// matching subscriber on every broker once; the hierarchy and the bus echo
// rules are those of one broker.
func TestClusterPubSubAndBus(t *testing.T) {
	_, b := startCluster(t, 3, "")
	var tops, others []*client.Conn
	for _, n := range b {
		tops = append(tops, dial(t, n.WS+"/sub/livesys", nil))
		others = append(others, dial(t, n.WS+"/sub/livesysX", nil))
	}
	for i, n := range b {
		post(t, n.HTTP+fmt.Sprintf("/pub/livesys/%d", 40+i), fmt.Sprint("from-", i))
		post(t, n.HTTP+"/pub/livesysX", "not for /livesys")
	}
	for i, c := range tops {
		var got []string
		for range 3 {
			got = append(got, readText(t, c))
		}
		if fmt.Sprint(got) != fmt.Sprint([]string{"from-0", "from-1", "from-2"}) {
			t.Fatalf("broker %d: /sub/livesys got %v", i, got)
		}
		if extra, ok := readFrame(t, c, 200*time.Millisecond); ok {
			t.Fatalf("broker %d: a fourth message %q", i, extra)
		}
	}
	for i, c := range others {
		for range 3 {
			if got := readText(t, c); got != "not for /livesys" {
				t.Fatalf("broker %d: /sub/livesysX got %q", i, got)
			}
		}
	}

	plain := dial(t, b[0].WS+"/bus/room", nil)
	echo := dial(t, b[1].WS+"/bus/room?echo=1", nil)
	third := dial(t, b[2].WS+"/bus/room", nil)
	ctx := context.Background()
	if err := plain.WriteText(ctx, "from plain"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, echo); got != "from plain" {
		t.Fatalf("echo peer got %q", got)
	}
	if got := readText(t, third); got != "from plain" {
		t.Fatalf("third peer got %q", got)
	}
	if err := echo.WriteText(ctx, "from echo"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Conn{"plain": plain, "echo": echo, "third": third} {
		if got := readText(t, c); got != "from echo" {
			t.Fatalf("%s got %q", name, got)
		}
	}
	// The plain peer never gets its own frame back.
	if got, ok := readFrame(t, plain, 300*time.Millisecond); ok {
		t.Fatalf("plain peer got %q", got)
	}
}

// TestClusterReplayOnAnotherBroker: since works on a broker that did not
// take the publishes, in envelope mode, then live with no gap.
func TestClusterReplayOnAnotherBroker(t *testing.T) {
	_, b := startCluster(t, 3, "buses:\n  /d:\n    durable: true\n    history: {messages: 1000, age: 1h}\n")
	var seqs []uint64
	for i := 1; i <= 5; i++ {
		seqs = append(seqs, publishSeq(t, b[0].HTTP+"/pub/d/x", fmt.Sprint(i)))
	}
	sub := dial(t, b[2].WS+fmt.Sprintf("/sub/d?envelope=1&since=%d", seqs[1]), nil)
	publishSeq(t, b[1].HTTP+"/pub/d/y", "6")
	var got []string
	var last uint64
	for range 4 {
		var e client.Envelope
		if err := json.Unmarshal([]byte(readText(t, sub)), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq <= last {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
		got = append(got, string(e.Data))
	}
	if fmt.Sprint(got) != "[3 4 5 6]" {
		t.Fatalf("got %v", got)
	}

	// Server-Sent Events on the third broker resume after Last-Event-ID.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b[1].HTTP+"/sub/d/x", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", fmt.Sprint(seqs[2]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var events []string
	for len(events) < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended after %v: %v", events, err)
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "id: "); ok {
			events = append(events, id[strings.IndexByte(id, ':')+1:]) // EPOCH:SEQ
		}
	}
	if fmt.Sprint(events) != fmt.Sprint([]uint64{seqs[3], seqs[4]}) {
		t.Fatalf("event ids %v, want %v", events, seqs[3:])
	}
}

// TestClusterPushPull: 10,000 messages pushed through three brokers reach
// two raw pullers on each broker exactly once between them.
func TestClusterPushPull(t *testing.T) {
	_, b := startCluster(t, 3, "")
	const total = 10000
	var mu sync.Mutex
	seen := make(map[string]int, total)
	perBroker := make([]int, len(b))
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, n := range b {
		for range 2 {
			c := dial(t, n.WS+"/pull/jobs?prefetch=32", nil)
			wg.Go(func() {
				for {
					f, err := c.Read(ctx)
					if err != nil {
						return
					}
					mu.Lock()
					seen[string(f.Data)]++
					perBroker[i]++
					mu.Unlock()
				}
			})
		}
	}
	var pushers sync.WaitGroup
	for i, n := range b {
		c := dial(t, n.WS+"/push/jobs?envelope=1", nil)
		pushers.Go(func() {
			sent := 0
			for k := i; k < total; k += len(b) {
				if err := c.WriteText(ctx, fmt.Sprint(k)); err != nil {
					t.Error(err)
					return
				}
				sent++
			}
			for range sent {
				if ack, ok := readFrame(t, c, 30*time.Second); !ok || !strings.HasPrefix(ack, `{"ok":`) {
					t.Errorf("push answered %q", ack)
					return
				}
			}
		})
	}
	pushers.Wait()
	waitFor(t, "every message pulled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	})
	time.Sleep(300 * time.Millisecond)
	cancel()
	mu.Lock()
	defer mu.Unlock()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s pulled %d times", k, n)
		}
	}
	for i, n := range perBroker {
		if n == 0 {
			t.Errorf("broker %d's pullers got nothing", i)
		}
	}
	t.Logf("pulled per broker: %v", perBroker)
}

// TestClusterAcksAndDeadLetters: a puller on one broker nacks, the message
// comes back to a puller on another; after max_attempts it is a dead
// letter that the admin API of a third broker lists and requeues.
func TestClusterAcksAndDeadLetters(t *testing.T) {
	_, b := startCluster(t, 3, "buses:\n  /jobs:\n    queue: {max_attempts: 2, ack_timeout: 2s}\n")
	first := dial(t, b[0].WS+"/pull/jobs/x?envelope=1", nil)
	post(t, b[1].HTTP+"/push/jobs/x", `{"job":1}`)
	var d struct {
		ID      uint64          `json:"id"`
		Attempt int             `json:"attempt"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(readText(t, first)), &d); err != nil || d.Attempt != 1 {
		t.Fatalf("first delivery %+v, %v", d, err)
	}
	// Nacked with a delay that outlasts the first broker's fetch, which
	// would otherwise take the message back at once.
	if err := first.WriteText(context.Background(), fmt.Sprintf(`{"nack":%d,"delay":"2s","error":"no disk"}`, d.ID)); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second := dial(t, b[2].WS+"/pull/jobs/x?envelope=1", nil)
	if err := json.Unmarshal([]byte(readText(t, second)), &d); err != nil || d.Attempt != 2 {
		t.Fatalf("second delivery %+v, %v", d, err)
	}
	// No answer: the ack timeout ends the last attempt.
	var dead []struct {
		ID        uint64 `json:"id"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	}
	waitFor(t, "a dead letter", func() bool {
		resp, err := http.Get(b[1].HTTP + "/api/queues/dead?topic=/jobs/x")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&dead) == nil && len(dead) == 1
	})
	if dead[0].ID != d.ID || dead[0].Attempts != 2 || !strings.Contains(dead[0].LastError, "not acknowledged") {
		t.Fatalf("dead letter %+v", dead[0])
	}
	resp, err := http.Post(b[0].HTTP+"/api/queues/dead/requeue?topic=/jobs/x", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("requeue: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if err := json.Unmarshal([]byte(readText(t, second)), &d); err != nil || d.Attempt != 1 || string(d.Data) != `{"job":1}` || d.ID != dead[0].ID {
		t.Fatalf("after requeue %+v (want id %d), %v", d, dead[0].ID, err)
	}
	if err := second.WriteText(context.Background(), fmt.Sprintf(`{"ack":%d}`, d.ID)); err != nil {
		t.Fatal(err)
	}
}

// TestClusterBrokerKilled: kill -9 the broker a subscriber is on; the
// subscriber (the mercury CLI, through a load balancer) reconnects to
// another broker and resumes on the durable bus with no gap and no
// duplicate, while publishers go on through the brokers left.
func TestClusterBrokerKilled(t *testing.T) {
	_, b := startCluster(t, 3, "buses:\n  /d:\n    durable: true\n    history: {messages: 10000, age: 1h}\n")
	lb := startProxy(t, b[0].Listen)
	sub := startCLI(t, nil, "sub", "/d", "--json", "--server", lb.WS)
	sub.waitStderr(t, "connected to")
	for i := 1; i <= 5; i++ {
		publishSeq(t, b[1].HTTP+"/pub/d", fmt.Sprint(i))
	}
	expectEnvelopes(t, sub, "1", "2", "3", "4", "5")

	b[0].signal(syscall.SIGKILL)
	b[0].wait(t)
	sub.waitStderr(t, "reconnecting in")
	for i := 6; i <= 8; i++ {
		publishSeq(t, b[2].HTTP+"/pub/d", fmt.Sprint(i))
	}
	// The load balancer sends new connections to a broker alive.
	lb.mu.Lock()
	lb.backend = b[1].Listen
	lb.mu.Unlock()
	sub.waitStderr(t, "reconnected to")
	publishSeq(t, b[2].HTTP+"/pub/d", "9")
	expectEnvelopes(t, sub, "6", "7", "8", "9")
	if strings.Contains(sub.stderr.String(), "gap") {
		t.Fatalf("a gap:\n%s", sub.stderr)
	}
}

// TestClusterLosesNATS: a broker that loses NATS refuses publishes with a
// clear error and says so on /readyz; it comes back by itself.
func TestClusterLosesNATS(t *testing.T) {
	nc, b := startCluster(t, 1, "buses:\n  /d:\n    durable: true\n")
	ready := func() int {
		resp, err := http.Get(b[0].HTTP + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := ready(); s != 200 {
		t.Fatalf("/readyz %d", s)
	}
	for i := range natstest.Size {
		nc.Stop(i)
	}
	waitFor(t, "/readyz to say 503", func() bool { return ready() == 503 })
	resp, err := client.Post(context.Background(), nil, b[0].HTTP+"/pub/d/x", "", []byte("lost?"), http.Header{"Accept": {"application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 503 || !strings.Contains(string(resp.Body), "cluster_unavailable") {
		t.Fatalf("publish without NATS: %d %s", resp.Status, resp.Body)
	}
	pub := dial(t, b[0].WS+"/pub/d/x?envelope=1", nil)
	if err := pub.WriteText(context.Background(), "lost?"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, pub); !strings.Contains(got, `"code":"cluster_unavailable"`) {
		t.Fatalf("error frame %s", got)
	}
	for i := range natstest.Size {
		nc.StartAgain(i)
	}
	nc.WaitJetStream()
	waitFor(t, "/readyz to say 200", func() bool { return ready() == 200 })
	waitFor(t, "a publish to go through", func() bool {
		resp, err := client.Post(context.Background(), nil, b[0].HTTP+"/pub/d/x", "", []byte("back"), http.Header{"Accept": {"application/json"}})
		return err == nil && resp.Status == 200
	})
}

// TestClusterPublishConfirms: a WebSocket publisher keeps many messages in
// flight through the cluster, and is still answered in the order of its
// frames, each {"ok":SEQ} once stored, with increasing sequence numbers
// that a subscriber on another broker sees in the same order.
func TestClusterPublishConfirms(t *testing.T) {
	_, b := startCluster(t, 2, "buses:\n  /d:\n    durable: true\n    history: {messages: 10000, age: 1h}\n")
	sub := dial(t, b[1].WS+"/sub/d?envelope=1", nil)
	pub := dial(t, b[0].WS+"/pub/d/x?envelope=1", nil)
	const n = 1000
	ctx := context.Background()
	go func() {
		for i := range n {
			if err := pub.WriteText(ctx, fmt.Sprint(i)); err != nil {
				return
			}
		}
	}()
	var seqs []uint64
	for i := range n {
		var ok struct{ OK uint64 }
		line := readText(t, pub)
		if err := json.Unmarshal([]byte(line), &ok); err != nil || ok.OK == 0 {
			t.Fatalf("answer %d: %s", i, line)
		}
		if i > 0 && ok.OK <= seqs[i-1] {
			t.Fatalf("answer %d: seq %d after %d", i, ok.OK, seqs[i-1])
		}
		seqs = append(seqs, ok.OK)
	}
	for i := range n {
		var e client.Envelope
		if err := json.Unmarshal([]byte(readText(t, sub)), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != seqs[i] || string(e.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d: seq %d data %s, want seq %d", i, e.Seq, e.Data, seqs[i])
		}
	}
}

// TestClusterNATSRestartUnderLoad: a NATS server is stopped and started
// again while publishers go on through two brokers; the brokers connected
// to it move to the others. A subscriber on the third broker gets every
// confirmed message once, in order; what was refused was not confirmed.
func TestClusterNATSRestartUnderLoad(t *testing.T) {
	nc, b := startCluster(t, 3, "buses:\n  /load:\n    durable: true\n    history: {messages: 100000, age: 1h}\n")
	sub := dial(t, b[2].WS+"/sub/load?envelope=1", nil)
	var mu sync.Mutex
	confirmed := map[uint64]bool{}
	refused := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				seq, err := client.PublishURL(context.Background(), b[i].HTTP+"/pub/load/x", []byte(fmt.Sprint(i, "-", k)), false, nil)
				mu.Lock()
				if err == nil {
					confirmed[seq] = true
				} else {
					refused++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	nc.Stop(0)
	time.Sleep(time.Second)
	nc.Restart(0)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	want := len(confirmed)
	t.Logf("%d confirmed, %d refused while a NATS server restarted", want, refused)
	mu.Unlock()
	if want == 0 {
		t.Fatal("nothing confirmed")
	}
	got := map[uint64]bool{}
	var last uint64
	for len(got) < want {
		line, ok := readFrame(t, sub, 20*time.Second)
		if !ok {
			t.Fatalf("got %d of %d confirmed messages", len(got), want)
		}
		var e client.Envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq <= last {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
		if confirmed[e.Seq] {
			got[e.Seq] = true
		}
	}
}

// TestClusterExclusivePullers: an exclusive puller on one broker keeps the
// queue from pullers on the others (close 4409); a takeover on a third
// broker closes it with 4409 "taken over"; must_exist is cluster-wide.
func TestClusterExclusivePullers(t *testing.T) {
	_, b := startCluster(t, 3, "")
	closedWith := func(c *client.Conn) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			if _, err := c.Read(ctx); err != nil {
				return client.CloseStatus(err), client.CloseReason(err)
			}
		}
	}
	solo := dial(t, b[0].WS+"/pull/solo?exclusive=1", nil)
	post(t, b[1].HTTP+"/push/solo", "one")
	if got := readText(t, solo); got != "one" {
		t.Fatalf("exclusive puller got %q", got)
	}
	other := dial(t, b[1].WS+"/pull/solo", nil)
	if code, reason := closedWith(other); code != 4409 || !strings.Contains(reason, "exclusive") {
		t.Fatalf("a puller on another broker: %d %q", code, reason)
	}
	dial(t, b[2].WS+"/pull/solo?takeover=1", nil)
	if code, reason := closedWith(solo); code != 4409 || reason != "taken over" {
		t.Fatalf("the exclusive puller after a takeover elsewhere: %d %q", code, reason)
	}
	// The queue exists on every broker; another does not.
	pusher := dial(t, b[1].WS+"/push/solo?must_exist=1&envelope=1", nil)
	if err := pusher.WriteText(context.Background(), "two"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, pusher); !strings.HasPrefix(got, `{"ok":`) {
		t.Fatalf("push with must_exist to a queue of the cluster: %s", got)
	}
	ghost := dial(t, b[1].WS+"/pull/ghost?must_exist=1", nil)
	if code, _ := closedWith(ghost); code != 4404 {
		t.Fatalf("must_exist on a queue nobody made: %d", code)
	}
}

// TestClusterWithAuth: rights are checked on the broker a client connects
// to, clustered as alone: a key's publishes go through the cluster to a
// subscriber on another broker; a client without one is refused.
func TestClusterWithAuth(t *testing.T) {
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		t.Fatal(err)
	}
	_, b := startCluster(t, 2, fmt.Sprintf(`auth:
  api_keys:
    - name: agent
      hash: "%s"
      rights: {pub: [/allowed], sub: [/allowed]}
`, hash))
	sub := dial(t, b[1].WS+"/sub/allowed?token="+key, nil)
	pub := dial(t, b[0].WS+"/pub/allowed/x?envelope=1&token="+key, nil)
	if err := pub.WriteText(context.Background(), "through"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, pub); !strings.HasPrefix(got, `{"ok":`) {
		t.Fatalf("publish answered %s", got)
	}
	if got := readText(t, sub); got != "through" {
		t.Fatalf("subscriber got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, b[0].WS+"/pub/allowed", nil); err == nil {
		c.CloseNow()
		t.Fatal("an anonymous publisher was let in")
	}
	if c, err := client.Dial(ctx, b[1].WS+"/pub/other?token="+key, nil); err == nil {
		c.CloseNow()
		t.Fatal("a publisher without the right was let in")
	}
}
