package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// crashConfig is a durable bus for publishing and a durable queue.
const crashConfig = `
buses:
  /durable:
    durable: true
    history: {messages: 1000000}
  /work:
    durable: true
    queue: {max_attempts: 1000, ack_timeout: 5s}
`

// ledger records what the broker confirmed and what pullers received,
// across every round.
type ledger struct {
	mu        sync.Mutex
	published map[string]uint64 // payload → seq the broker confirmed
	pushed    map[uint64]string // seq (the delivery id) → payload confirmed
	pulled    map[uint64]int    // delivery id → times received
}

func (l *ledger) confirmPublish(payload string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.published[payload] = seq
}

// TestCrashLosesNothingConfirmed runs a broker with durable buses under
// continuous confirmed publishing, pushing and acknowledged pulling, kills
// it with SIGKILL at random moments, and restarts it on the same data
// directory. After every restart each message a publisher was told ok is
// replayable, with its sequence number, in order; each confirmed push is
// delivered (again, with the same id, if it was not acknowledged).
func TestCrashLosesNothingConfirmed(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mercury.yaml")
	if err := os.WriteFile(cfg, []byte(crashConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	l := &ledger{published: map[string]uint64{}, pushed: map[uint64]string{}, pulled: map[uint64]int{}}
	rounds := 4
	for round := range rounds {
		b := startBroker(t, "--config", cfg, "--data-dir", data)
		verifyReplay(t, b, l, round)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := range 2 {
			wg.Go(func() { publishUntilKilled(ctx, b, l, fmt.Sprintf("r%d-p%d", round, p)) })
		}
		wg.Go(func() { pushUntilKilled(ctx, b, l, fmt.Sprintf("r%d", round)) })
		wg.Go(func() { pullUntilKilled(ctx, b, l) })
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		b.signal(syscall.SIGKILL)
		b.wait(t)
		stop()
		wg.Wait()
		l.mu.Lock()
		t.Logf("round %d: %d confirmed publishes, %d confirmed pushes, %d ids pulled so far",
			round, len(l.published), len(l.pushed), len(l.pulled))
		l.mu.Unlock()
	}
	// Last restart: everything confirmed replays, and the queue gives up
	// every confirmed push not yet acknowledged.
	b := startBroker(t, "--config", cfg, "--data-dir", data)
	verifyReplay(t, b, l, rounds)
	drainQueue(t, b, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.published) == 0 || len(l.pushed) == 0 {
		t.Fatalf("the load never got going: %d publishes, %d pushes confirmed", len(l.published), len(l.pushed))
	}
	for id, payload := range l.pushed {
		if l.pulled[id] == 0 {
			t.Errorf("confirmed push %d (%s) was never delivered", id, payload)
		}
	}
}

// publishUntilKilled publishes in envelope mode and records each confirm.
func publishUntilKilled(ctx context.Context, b *brokerProc, l *ledger, name string) {
	c, err := client.Dial(ctx, b.WS+"/pub/durable/"+name+"?envelope=1", nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for i := 0; ctx.Err() == nil; i++ {
		payload := fmt.Sprintf(`{"from":%q,"n":%d}`, name, i)
		if c.WriteText(ctx, payload) != nil {
			return
		}
		f, err := c.Read(ctx)
		if err != nil {
			return
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.OK == nil {
			return
		}
		l.confirmPublish(payload, *in.OK)
	}
}

func pushUntilKilled(ctx context.Context, b *brokerProc, l *ledger, name string) {
	c, err := client.Dial(ctx, b.WS+"/push/work/jobs?envelope=1", nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for i := 0; ctx.Err() == nil; i++ {
		payload := fmt.Sprintf(`{"job":"%s-%d"}`, name, i)
		if c.WriteText(ctx, payload) != nil {
			return
		}
		f, err := c.Read(ctx)
		if err != nil {
			return
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.OK == nil {
			return
		}
		l.mu.Lock()
		l.pushed[*in.OK] = payload
		l.mu.Unlock()
	}
}

// pullUntilKilled takes jobs, records their ids, and acknowledges them.
func pullUntilKilled(ctx context.Context, b *brokerProc, l *ledger) {
	c, err := client.Dial(ctx, b.WS+"/pull/work/jobs?envelope=1&prefetch=4", nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for ctx.Err() == nil {
		f, err := c.Read(ctx)
		if err != nil {
			return
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.Message == nil {
			return
		}
		var id uint64
		json.Unmarshal(in.Message.ID, &id)
		l.mu.Lock()
		l.pulled[id]++
		l.mu.Unlock()
		if c.Ack(ctx, in.Message.ID) != nil {
			return
		}
	}
}

// verifyReplay checks that every confirmed publish replays with its
// sequence number, each publisher's messages in the order it sent them.
func verifyReplay(t *testing.T, b *brokerProc, l *ledger, round int) {
	t.Helper()
	l.mu.Lock()
	want := make(map[string]uint64, len(l.published))
	for p, s := range l.published {
		want[p] = s
	}
	l.mu.Unlock()
	sub := dial(t, b.WS+"/sub/durable?since=0&envelope=1", nil)
	// A marker published now closes the replay: everything before it has
	// arrived when it does.
	marker := fmt.Sprintf(`{"marker":%d}`, round)
	seq, err := client.PublishURL(context.Background(), b.HTTP+"/pub/durable/marker", []byte(marker), false, nil)
	if err != nil {
		t.Fatalf("round %d: publishing the marker: %v", round, err)
	}
	got := map[string]uint64{}
	var order []uint64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		f, err := sub.Read(ctx)
		if err != nil {
			t.Fatalf("round %d: replay ended: %v", round, err)
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if in.Gap != nil {
			t.Fatalf("round %d: replay of a durable bus reports a gap %+v", round, *in.Gap)
		}
		if in.Message == nil {
			continue
		}
		if in.Message.Seq == seq {
			break
		}
		got[string(in.Message.Data)] = in.Message.Seq
		order = append(order, in.Message.Seq)
	}
	if !sort.SliceIsSorted(order, func(i, j int) bool { return order[i] < order[j] }) {
		t.Fatalf("round %d: replay out of sequence order", round)
	}
	missing := 0
	for p, s := range want {
		if gs, ok := got[p]; !ok || gs != s {
			missing++
			if missing <= 5 {
				t.Errorf("round %d: confirmed %s (seq %d) replays as seq %d (present: %v)", round, p, s, gs, ok)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("round %d: %d of %d confirmed messages missing after a kill -9", round, missing, len(want))
	}
	// Per publisher, sequence order is send order.
	type msg struct {
		From string
		N    int
	}
	last := map[string]int{}
	bySeq := make([]string, 0, len(got))
	for p := range got {
		bySeq = append(bySeq, p)
	}
	sort.Slice(bySeq, func(i, j int) bool { return got[bySeq[i]] < got[bySeq[j]] })
	for _, p := range bySeq {
		var m msg
		if json.Unmarshal([]byte(p), &m) != nil || m.From == "" {
			continue
		}
		if prev, ok := last[m.From]; ok && m.N <= prev {
			t.Fatalf("round %d: %s's message %d replays after its message %d", round, m.From, m.N, prev)
		}
		last[m.From] = m.N
	}
}

// drainQueue pulls until every confirmed push has been seen.
func drainQueue(t *testing.T, b *brokerProc, l *ledger) {
	t.Helper()
	c := dial(t, b.WS+"/pull/work/jobs?envelope=1&prefetch=64", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		l.mu.Lock()
		done := true
		for id := range l.pushed {
			if l.pulled[id] == 0 {
				done = false
				break
			}
		}
		l.mu.Unlock()
		if done {
			return
		}
		f, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("draining the queue: %v (queues: %s)", err, queuesOf(t, b))
		}
		in, err := client.ParseIncoming(f.Data)
		if err != nil || in.Message == nil {
			t.Fatalf("draining: %q %v", f.Data, err)
		}
		var id uint64
		json.Unmarshal(in.Message.ID, &id)
		l.mu.Lock()
		l.pulled[id]++
		l.mu.Unlock()
		c.Ack(ctx, in.Message.ID)
	}
}

func queuesOf(t *testing.T, b *brokerProc) string {
	resp, err := http.Get(b.HTTP + "/api/queues")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body))
}
