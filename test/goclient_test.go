package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/auth/authtest"
	"github.com/mercury-broker/mercury/web/client"
)

// stateLog records the states a subscription, worker or bus peer went
// through.
type stateLog struct {
	mu     sync.Mutex
	states []client.State
}

func (l *stateLog) on(s client.State, _ error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, s)
}

func (l *stateLog) count(s client.State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.states {
		if x == s {
			n++
		}
	}
	return n
}

func (l *stateLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.states)
}

// TestGoClientSubscribeDurableRestarts: Client.Subscribe on a durable bus
// keeps every message, in order, once, while the broker is killed and
// restarted on the same data dir twice during a 2,000-message publish.
func TestGoClientSubscribeDurableRestarts(t *testing.T) {
	cfg := mercuryjsConfig(t, "")
	data := t.TempDir()
	b := startBroker(t, "--config", cfg, "--data-dir", data)
	m := client.New(b.WS, &client.Config{Backoff: 50 * time.Millisecond, MaxBackoff: time.Second})

	var mu sync.Mutex
	var got [][2]uint64
	var states stateLog
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- m.Subscribe(ctx, "/durable", &client.SubscribeOptions{Since: "0", OnState: states.on}, func(msg client.Message) error {
			var d struct{ I uint64 }
			if err := msg.Decode(&d); err != nil {
				return err
			}
			mu.Lock()
			got = append(got, [2]uint64{msg.Seq, d.I})
			mu.Unlock()
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Subscribe returned %v", err)
		}
	}()

	var last uint64
	retries := 0
	for i := 0; i < 2000; i++ {
		switch i {
		case 600, 1300:
			b.signal(syscall.SIGKILL)
			<-b.done
			b = startBrokerOn(t, b.Listen, "--config", cfg, "--data-dir", data)
		}
		for {
			seq, err := m.Publish(context.Background(), "/durable/x", map[string]int{"i": i})
			if err == nil {
				last = seq
				break
			}
			retries++
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1][0] >= last
	})
	kept := replayDurable(t, b, last, nil)
	mu.Lock()
	defer mu.Unlock()
	checkReceivedKept(t, got, kept, 2000)
	if n := states.count(client.StateReconnecting); n < 2 {
		t.Fatalf("%d reconnections for two restarts: %v", n, &states)
	}
	t.Logf("%d messages, %d reconnections, %d publishes retried", len(got), states.count(client.StateReconnecting), retries)
}

// TestGoClientPull: Client.Pull works 500 jobs, failing every tenth once;
// in the end each is acked exactly once and the queue is empty.
func TestGoClientPull(t *testing.T) {
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir())
	m := client.New(b.WS, nil)
	for i := 0; i < 500; i++ {
		if _, err := m.Push(context.Background(), "/work", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	acked := map[uint64]int{}
	ids := map[string]bool{}
	nacked := 0
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- m.Pull(ctx, "/work", &client.PullOptions{Prefetch: 4, Concurrency: 4}, func(job client.Job) error {
			var d struct{ I uint64 }
			if err := job.Decode(&d); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if d.I%10 == 0 && job.Attempt == 1 {
				nacked++
				return fmt.Errorf("not now")
			}
			acked[d.I]++
			ids[job.ID] = true
			return nil
		})
	}()
	waitFor(t, "500 jobs acked", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) == 500 })
	waitFor(t, "an empty queue", func() bool {
		var qs []map[string]any
		json.Unmarshal(get(t, b.HTTP+"/api/queues"), &qs)
		return len(qs) == 1 && qs[0]["waiting"] == 0.0 && qs[0]["in_flight"] == 0.0 && qs[0]["dead"] == 0.0
	})
	time.Sleep(200 * time.Millisecond) // a job acked twice would show by now
	cancel()
	if err := <-ended; err != context.Canceled {
		t.Errorf("Pull returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range acked {
		if n != 1 {
			t.Fatalf("job %d acked %d times", i, n)
		}
	}
	if nacked != 50 || len(ids) != 500 {
		t.Fatalf("%d nacked, %d ids", nacked, len(ids))
	}
}

// subConnections returns the ids of the broker's connections of pattern
// on topic, as GET /api/connections lists them.
func subConnections(t *testing.T, b *brokerProc, adminToken, pattern, topic string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.HTTP+"/api/connections", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var conns []struct{ ID, Pattern, Topic string }
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/connections: %d %v", resp.StatusCode, err)
	}
	var ids []string
	for _, c := range conns {
		if c.Pattern == pattern && c.Topic == topic {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// TestGoClientTokenRefresh: with tokens that expire every 5 s, a
// subscription and a worker keep their one connection each for a minute:
// GetToken's fresh tokens go in-band, and the broker lists the same
// connection ids from start to end.
func TestGoClientTokenRefresh(t *testing.T) {
	k := authtest.NewKeys(t)
	cfg := filepath.Join(t.TempDir(), "mercury.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("auth:\n  jwt:\n    secret_file: %s\n    issuer: %s\n    audience: %s\n",
		k.Files.Secret, k.Issuer, k.Audience)), 0o600)
	b := startBroker(t, "--config", cfg)
	admin := k.Sign(t, "HS256", k.Claims("admin", time.Hour, map[string]any{"admin": true}), "")
	var minted atomic.Int64
	rights := map[string]any{"sub": []any{"/tok"}, "pub": []any{"/tok"}, "push": []any{"/tokjobs"}, "pull": []any{"/tokjobs"}}
	var errs sync.Map
	m := client.New(b.WS, &client.Config{
		GetToken: func(ctx context.Context) (string, error) {
			minted.Add(1)
			return k.Sign(t, "HS256", k.Claims("go", 5*time.Second, rights), ""), nil
		},
		OnError: func(err error) { errs.Store(err.Error(), true) },
	})
	seconds := 60
	if testing.Short() {
		seconds = 12
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got, jobs atomic.Int64
	var subStates, pullStates stateLog
	subDone := make(chan error, 1)
	go func() {
		subDone <- m.Subscribe(ctx, "/tok", &client.SubscribeOptions{OnState: subStates.on, Transport: client.TransportWebSocket},
			func(client.Message) error { got.Add(1); return nil })
	}()
	pullDone := make(chan error, 1)
	go func() {
		pullDone <- m.Pull(ctx, "/tokjobs", &client.PullOptions{OnState: pullStates.on}, func(client.Job) error { jobs.Add(1); return nil })
	}()
	waitFor(t, "both open", func() bool { return subStates.count(client.StateOpen) == 1 && pullStates.count(client.StateOpen) == 1 })
	subIDs, pullIDs := subConnections(t, b, admin, "sub", "/tok"), subConnections(t, b, admin, "pull", "/tokjobs")
	if len(subIDs) != 1 || len(pullIDs) != 1 {
		t.Fatalf("connections: sub %v, pull %v", subIDs, pullIDs)
	}
	published := 0
	for range seconds {
		time.Sleep(time.Second)
		if _, err := m.Publish(ctx, "/tok/x", published); err != nil {
			t.Fatalf("publish %d: %v", published, err)
		}
		if _, err := m.Push(ctx, "/tokjobs", published); err != nil {
			t.Fatalf("push %d: %v", published, err)
		}
		published++
	}
	waitFor(t, "every message and job", func() bool { return got.Load() == int64(published) && jobs.Load() == int64(published) })
	if s, p := subConnections(t, b, admin, "sub", "/tok"), subConnections(t, b, admin, "pull", "/tokjobs"); fmt.Sprint(s, p) != fmt.Sprint(subIDs, pullIDs) {
		t.Fatalf("connections were %v and %v, are %v and %v: a reconnection", subIDs, pullIDs, s, p)
	}
	if subStates.count(client.StateReconnecting)+pullStates.count(client.StateReconnecting) > 0 {
		t.Fatalf("reconnections: sub %v, pull %v", &subStates, &pullStates)
	}
	if n := minted.Load(); n < int64(seconds/5) {
		t.Fatalf("%d tokens minted in %d s of 5 s tokens", n, seconds)
	}
	if strings.Contains(b.logs.String(), "token expired") {
		t.Fatalf("a connection was closed for an expired token:\n%s", b.logs)
	}
	errs.Range(func(k, _ any) bool { t.Errorf("OnError: %s", k); return true })
	cancel()
	if err := <-subDone; err != context.Canceled {
		t.Errorf("Subscribe returned %v", err)
	}
	if err := <-pullDone; err != context.Canceled {
		t.Errorf("Pull returned %v", err)
	}
	t.Logf("%d tokens minted, %d messages, %d jobs, connections sub %v pull %v", minted.Load(), got.Load(), jobs.Load(), subIDs, pullIDs)
}

// noWebSocketProxy is a proxy in front of b that refuses WebSocket
// handshakes (403) and passes the rest; it counts the refusals.
func noWebSocketProxy(t *testing.T, b *brokerProc) (server string, refused *atomic.Int64) {
	target, _ := url.Parse(b.HTTP)
	proxy := httputil.NewSingleHostReverseProxy(target)
	refused = &atomic.Int64{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			refused.Add(1)
			http.Error(w, "no WebSockets here", http.StatusForbidden)
			return
		}
		r.Host = target.Host // the broker serves loopback Host names
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return "ws" + strings.TrimPrefix(front.URL, "http"), refused
}

// TestGoClientServerSentEvents: with WebSockets refused by a proxy on the
// way, a subscription works over Server-Sent Events, and resumes from its
// position when the stream is cut.
func TestGoClientServerSentEvents(t *testing.T) {
	b := startBroker(t, "--config", mercuryjsConfig(t, ""), "--data-dir", t.TempDir())
	server, refused := noWebSocketProxy(t, b)
	m := client.New(server, &client.Config{Backoff: 50 * time.Millisecond})
	direct := client.New(b.WS, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got [][2]uint64
	var states stateLog
	done := make(chan error, 1)
	go func() {
		done <- m.Subscribe(ctx, "/durable", &client.SubscribeOptions{OnState: states.on}, func(msg client.Message) error {
			var i uint64
			if err := msg.Decode(&i); err != nil {
				return err
			}
			mu.Lock()
			got = append(got, [2]uint64{msg.Seq, i})
			mu.Unlock()
			return nil
		})
	}()
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	// The stream's headers come with its first event: publish until the
	// subscriber has one.
	var last uint64
	publish := func(i int) {
		seq, err := direct.Publish(context.Background(), "/durable/x", i)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	i := 0
	for deadline := time.Now().Add(30 * time.Second); received() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("nothing received in 30 s; WebSockets refused %d times; states %v", refused.Load(), &states)
		}
		publish(i)
		time.Sleep(50 * time.Millisecond)
	}
	sse := subConnections(t, b, "", "sse", "/durable")
	if len(sse) != 1 || refused.Load() == 0 {
		t.Fatalf("event streams %v; WebSockets refused %d times", sse, refused.Load())
	}
	// Cut the stream: the subscription comes back (WebSocket refused,
	// then a stream again) and resumes where it was.
	req, _ := http.NewRequest(http.MethodDelete, b.HTTP+"/api/connections/"+sse[0], nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("closing the stream: %v %v", resp, err)
	}
	for end := i + 100; i < end; i++ {
		publish(i)
	}
	waitFor(t, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return got[len(got)-1][0] >= last })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	first := got[0][1]
	for j, g := range got {
		if g[1] != first+uint64(j) {
			t.Fatalf("message %d is %v: lost or repeated (%v)", j, g, got)
		}
	}
	if n := states.count(client.StateReconnecting); n < 1 || refused.Load() < 2 {
		t.Fatalf("states %v, WebSockets refused %d times: the cut stream was not reconnected, a WebSocket first", &states, refused.Load())
	}
	t.Logf("%d messages; WebSockets refused %d times; states %v", len(got), refused.Load(), &states)
}
