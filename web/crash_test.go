package web

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/web/client"
)

// crashKV is a KV whose unsynced writes a crash loses, as kill -9 may:
// every write goes to the live KV, which reads see; the disk KV gets a
// write only with a synced one, together with the unsynced ones before it
// (a write-ahead log is synced in order). crash drops what is not on disk
// and ignores every write after it.
type crashKV struct {
	store.KV // live
	disk     store.KV

	mu      sync.Mutex
	pending [][]store.Op
	crashed bool
}

func (k *crashKV) Apply(ops []store.Op, sync bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.crashed {
		return store.ErrClosed
	}
	if err := k.KV.Apply(ops, false); err != nil {
		return err
	}
	k.pending = append(k.pending, append([]store.Op(nil), ops...))
	if !sync {
		return nil
	}
	for _, p := range k.pending {
		if err := k.disk.Apply(p, true); err != nil {
			return err
		}
	}
	k.pending = nil
	return nil
}

func (k *crashKV) crash() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.crashed, k.pending = true, nil
}

func (k *crashKV) Close() error {
	err := k.KV.Close()
	if derr := k.disk.Close(); err == nil {
		err = derr
	}
	return err
}

// crashServer is a server on a durable store that can crash: restart
// drops what its store did not sync, and opens the server again on what
// was on disk.
type crashServer struct {
	t        *testing.T
	policies *broker.Policies
	diskDir  string
	kv       *crashKV
	*testServer
	store *store.Durable
}

func startCrashServer(t *testing.T, ps *broker.Policies) *crashServer {
	cs := &crashServer{t: t, policies: ps, diskDir: t.TempDir()}
	cs.open()
	t.Cleanup(cs.close)
	return cs
}

func (cs *crashServer) open() {
	t := cs.t
	live, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disk, err := store.Open(cs.diskDir)
	if err != nil {
		t.Fatal(err)
	}
	// The live KV starts as a copy of the disk.
	var ops []store.Op
	disk.Scan(nil, nil, func(k, v []byte) bool {
		ops = append(ops, store.Op{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
		return true
	})
	if err := live.Apply(ops, false); err != nil {
		t.Fatal(err)
	}
	cs.kv = &crashKV{KV: live, disk: disk}
	if cs.store, err = store.NewDurable(cs.kv); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{Policies: cs.policies, Store: cs.store})
	if err != nil {
		t.Fatal(err)
	}
	cs.testServer = startServerOn(t, b, Options{Buses: &Buses{Policies: cs.policies}})
}

func (cs *crashServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs.Shutdown(ctx)
	cs.http.Close()
	cs.broker.Close()
	cs.store.Close()
}

// crash loses every unsynced write, then starts again on the disk.
func (cs *crashServer) crash() {
	cs.kv.crash()
	cs.close()
	cs.open()
}

// TestRawPulledMessageStaysGoneAfterACrash: a raw puller reads a message
// of a durable queue, the broker crashes: the message is not delivered
// again (raw is at most once, across a crash too).
func TestRawPulledMessageStaysGoneAfterACrash(t *testing.T) {
	cs := startCrashServer(t, policies(t, broker.Policy{Bus: "/d", Durable: true}))
	for _, m := range []string{"one", "two", "three"} {
		if r := post(t, cs.testServer, "push", "/d/jobs", "text/plain", m); r.Status != 200 {
			t.Fatalf("push answered %d %s", r.Status, r.Body)
		}
	}
	raw := cs.dial(t, "pull", "/d/jobs")
	for _, want := range []string{"one", "two", "three"} {
		if got := raw.nextText(t); got != want {
			t.Fatalf("raw puller got %q, want %q", got, want)
		}
	}
	cs.waitQueue(t, "/d/jobs", func(q broker.QueueStats) bool { return q.Waiting == 0 && q.InFlight == 0 })
	raw.CloseNow()
	cs.crash()

	again := cs.dialURL(t, client.URL(cs.ws, "pull", "/d/jobs", nil), nil)
	again.nothing(t)
}

// waitQueue waits until topic's queue stats satisfy ok.
func (ts *testServer) waitQueue(t testing.TB, topic string, ok func(broker.QueueStats) bool) {
	t.Helper()
	waitFor(t, func() bool {
		for _, q := range ts.broker.Queues() {
			if string(q.Topic) == topic {
				return ok(q)
			}
		}
		return false
	})
}
