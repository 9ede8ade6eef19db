package web

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a real server on a loopback port.
type testServer struct {
	*Server
	broker *broker.Broker
	http   *httptest.Server
	ws     string // ws://127.0.0.1:port
}

func startServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return startServerWithBroker(t, broker.Options{}, opts)
}

func startServerWithBroker(t testing.TB, bopts broker.Options, opts Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := broker.New(bopts)
	s, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ConnContext = s.ConnContext // as mercury serve does
	hs.Start()
	ts := &testServer{Server: s, broker: b, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		hs.Close()
	})
	return ts
}

func (ts *testServer) dial(t testing.TB, pattern, topic string) *peer {
	t.Helper()
	return ts.dialURL(t, client.URL(ts.ws, pattern, topic, nil), nil)
}

func (ts *testServer) dialURL(t testing.TB, url string, opts *client.Options) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	p := &peer{Conn: c, frames: make(chan client.Frame, 1024), done: make(chan struct{})}
	go p.pump()
	t.Cleanup(func() {
		c.CloseNow()
		<-p.done
	})
	return p
}

// peer is a client connection whose frames are read in the background, so
// a test can wait for one with a timeout without losing the connection.
type peer struct {
	*client.Conn
	frames chan client.Frame
	done   chan struct{} // closed when reading stopped; err says why
	err    error
}

func (p *peer) pump() {
	defer close(p.done)
	defer close(p.frames)
	for {
		f, err := p.Read(context.Background())
		if err != nil {
			p.err = err
			return
		}
		p.frames <- f
	}
}

// next returns the next frame, failing the test after 5s.
func (p *peer) next(t testing.TB) client.Frame {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			<-p.done
			t.Fatalf("connection ended: %v", p.err)
		}
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
	panic("unreachable")
}

func (p *peer) nextText(t testing.TB) string {
	t.Helper()
	f := p.next(t)
	if f.Binary {
		t.Fatalf("got a binary frame %q, want text", f.Data)
	}
	return string(f.Data)
}

// nothing checks that no frame arrives for a short while.
func (p *peer) nothing(t testing.TB) {
	t.Helper()
	select {
	case f, ok := <-p.frames:
		if ok {
			t.Fatalf("got %q, want nothing", f.Data)
		}
	case <-time.After(150 * time.Millisecond):
	}
}

// ended waits for the connection to end and returns the reason.
func (p *peer) ended(t testing.TB) error {
	t.Helper()
	for {
		select {
		case _, ok := <-p.frames:
			if !ok {
				return p.err
			}
		case <-time.After(10 * time.Second):
			t.Fatal("connection still open after 10s")
		}
	}
}

func (p *peer) send(t testing.TB, s string) {
	t.Helper()
	if err := p.WriteText(context.Background(), s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitSubscribed waits until the broker has n subscriptions, so a publish
// that follows reaches them.
func (ts *testServer) waitSubscribed(t testing.TB, n int) {
	t.Helper()
	waitFor(t, func() bool { subs, _ := ts.broker.Subscriptions(); return subs == n })
}

func (ts *testServer) waitPeers(t testing.TB, n int) {
	t.Helper()
	waitFor(t, func() bool { peers, _ := ts.broker.BusPeers(); return peers == n })
}

func (ts *testServer) waitPullers(t testing.TB, topic string, n int) {
	t.Helper()
	waitFor(t, func() bool {
		for _, q := range ts.broker.Queues() {
			if string(q.Topic) == topic {
				return q.Pullers == n
			}
		}
		return n == 0
	})
}

func post(t testing.TB, ts *testServer, pattern, topic, contentType, body string) *client.Response {
	t.Helper()
	resp, err := client.Post(context.Background(), nil, client.URL(ts.http.URL, pattern, topic, nil), contentType, []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// memStatsAfterGC reads the memory statistics after two collections: the
// second frees what the first only finalized.
func memStatsAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
