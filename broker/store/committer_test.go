package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// gateKV holds each Apply until the test releases it, and shows the test
// the ops of each, so that it can decide exactly what is pending when.
type gateKV struct {
	KV
	applied chan []Op
	release chan struct{}
}

func newGateKV() *gateKV {
	return &gateKV{KV: openMem(), applied: make(chan []Op), release: make(chan struct{})}
}

func (g *gateKV) Apply(ops []Op, sync bool) error {
	if !sync {
		panic("Committer applied without sync")
	}
	g.applied <- slices.Clone(ops)
	<-g.release
	return g.KV.Apply(ops, sync)
}

// pendingKeys returns the first key of each pending caller, in order.
func pendingKeys(c *Committer) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for _, r := range c.pending {
		keys = append(keys, string(r.ops[0].Key))
	}
	return keys
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCommitterGroups(t *testing.T) {
	g := newGateKV()
	c := NewCommitter(g)
	defer c.Close()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Commit([]Op{put("first", "1")}); err != nil {
			t.Error(err)
		}
	})
	if got := <-g.applied; len(got) != 1 || string(got[0].Key) != "first" {
		t.Fatalf("first group = %v", got)
	}
	// While the first group is being written, 20 callers arrive; they
	// must all go into the second group, each caller's ops together and
	// in order, callers in the order they arrived.
	const callers = 20
	for i := range callers {
		wg.Go(func() {
			k := fmt.Sprintf("k%02d", i)
			if err := c.Commit([]Op{put(k, "tmp"), put(k+"/x", "x"), put(k, "final")}); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "20 pending callers", func() bool { return len(pendingKeys(c)) == callers })
	order := pendingKeys(c)
	g.release <- struct{}{}

	second := <-g.applied
	var want []string
	for _, k := range order {
		want = append(want, k+"=tmp", k+"/x=x", k+"=final")
	}
	var got []string
	for _, op := range second {
		got = append(got, string(op.Key)+"="+string(op.Value))
	}
	if !slices.Equal(got, want) {
		t.Errorf("second group:\n got %q\nwant %q", got, want)
	}
	g.release <- struct{}{}
	wg.Wait()
	// Two groups for 21 callers, and nothing else.
	select {
	case ops := <-g.applied:
		t.Errorf("a third group was applied: %v", ops)
	default:
	}
	for i := range callers {
		k := fmt.Sprintf("k%02d", i)
		if v := get(t, g.KV, k); v != "final" {
			t.Errorf("get %s = %q, want final", k, v)
		}
	}
}

func TestCommitterCloseCommitsPending(t *testing.T) {
	g := newGateKV()
	c := NewCommitter(g)
	var wg sync.WaitGroup
	wg.Go(func() { c.Commit([]Op{put("first", "1")}) })
	<-g.applied
	for i := range 5 {
		wg.Go(func() {
			if err := c.Commit([]Op{put(fmt.Sprintf("k%d", i), "v")}); err != nil {
				t.Errorf("commit pending at close: %v", err)
			}
		})
	}
	waitFor(t, "5 pending callers", func() bool { return len(pendingKeys(c)) == 5 })
	closed := make(chan error)
	go func() { closed <- c.Close() }()
	waitFor(t, "close to begin", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.closed })
	if err := c.Commit([]Op{put("late", "v")}); !errors.Is(err, ErrClosed) {
		t.Errorf("commit during close = %v, want ErrClosed", err)
	}
	g.release <- struct{}{} // the first group
	if ops := <-g.applied; len(ops) != 5 {
		t.Errorf("last group has %d ops, want 5", len(ops))
	}
	g.release <- struct{}{}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
	wg.Wait()
	if n := len(scanAll(t, g.KV, []byte("k"), nil)); n != 5 {
		t.Errorf("%d of 5 pending commits were written", n)
	}
}

func TestCommitterReportsErrorsToTheGroup(t *testing.T) {
	kv := openKV(t, memEngine, "")
	c := NewCommitter(kv)
	defer c.Close()
	if err := c.Commit([]Op{put("a", "1")}); err != nil {
		t.Fatal(err)
	}
	kv.Close() // the store goes away under the Committer
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := c.Commit([]Op{put("b", "1")}); !errors.Is(err, ErrClosed) {
				t.Errorf("commit to a closed store = %v, want ErrClosed", err)
			}
		})
	}
	wg.Wait()
}
