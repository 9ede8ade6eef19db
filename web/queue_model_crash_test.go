package web

import (
	"flag"
	"testing"
	"time"
)

// The queue model across a crash (-model.binary: the broker is killed
// with SIGKILL). docs/protocol.md, "Durable buses": pushes are synced
// before they are confirmed, a raw puller's messages leave the store,
// synced, before they are written, and everything else (acks, nacks and
// their delays, attempt counts, dead-letter moves, a queue's expiry) is
// written without an fsync of its own. Such a write is on disk once any
// later synced write is: the write-ahead log is synced in order. So a
// crash may undo exactly the settlements that no confirmed push followed,
// and nothing else:
//   - such an acked, dead-lettered or expired message may come back, with
//     its id, and must then be settled again (once, outside crashes); it
//     waits in its queue as any other, and may go to a raw puller that
//     leaves without reading it (at most once);
//   - such a nack's delay may be lost: the message may come back at once;
//   - a raw-pulled message never comes back; a confirmed push is never
//     lost; no two live pullers hold a message within its ack timeout.

// crashed tells the model that the broker was killed: what it had not
// synced is lost. Call it after restarted.
func (q *queueModel) crashed() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.counts.crashes++
	for _, m := range q.msgs {
		if m.settledSync < q.syncs {
			continue // a confirmed push came after its settlement
		}
		if (m.acked > 0 || m.expectDead || m.expired) && !m.mayReturn {
			m.mayReturn = true
			// A raw puller that left before it was settled did not
			// have it: only one that leaves from now on may.
			m.rawAtRisk = nil
		}
		if !m.notBefore.IsZero() {
			q.tracef("m%d: the nack's delay, not synced, may be lost", m.n)
			m.notBefore = time.Time{}
		}
	}
}

// undo makes m unsettled again: the crash undid its ack, its dead-letter
// move or its queue's expiry, which were not synced.
func (q *queueModel) undo(m *modelMsg, who string) {
	q.counts.undone++
	q.tracef("%s: back after the crash undid its settlement (ack %v, dead %v, expired %v), not synced: allowed once", who, m.acked > 0, m.expectDead, m.expired)
	m.acked, m.ackedAt = 0, time.Time{}
	m.expectDead, m.expired, m.maybeExpired = false, false, false
	m.mayReturn = false
}

// The CI run of the model against `mercury serve` killed with SIGKILL:
// a seed, and short lists each checking one point of the contract (the
// raw one fails on a broker that deletes a raw-pulled message unsynced).
var (
	modelCrashSeeds = []uint64{47938864}
	modelCrashOps   = map[string]string{
		"push:3:0 pull:r:16:0 sleep:200 close:0 restart pull:e:16:0 sleep:300":            "a raw-pulled message never comes back",
		"push:2:0 pull:e:16:0 sleep:100 ack:0:2 restart pull:e:16:0 sleep:300":            "an ack no synced write followed may be undone",
		"push:2:0 pull:e:16:0 sleep:100 ack:0:2 push:1:0 restart pull:e:16:0 sleep:300":   "an ack a confirmed push followed is never undone",
		"push:1:0 pull:e:1:0 sleep:50 nack:0:1:500 push:1:0 restart pull:e:1:0 sleep:100": "a synced nack's delay holds across a crash",
	}
)

func TestCrashQueueModel(t *testing.T) {
	if !*modelBinaryFlag {
		flag.Set("model.binary", "true")
		t.Cleanup(func() { flag.Set("model.binary", "false") })
	}
	buildModelBinary(t)
	var total modelCounts
	for _, seed := range modelCrashSeeds {
		if c, ok := runModelCase(t, seed, genOps(seed, *modelLenFlag)); ok {
			total = addCounts(total, c)
		}
	}
	for ops, promise := range modelCrashOps {
		list, err := parseOps(ops)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", promise, ops)
		if c, ok := runModelCase(t, 0, list); ok {
			total = addCounts(total, c)
		}
	}
	t.Logf("queue model against mercury serve killed with SIGKILL, seeds %v and %d lists: %s", modelCrashSeeds, len(modelCrashOps), total)
}

// TestModelNackCrossingItsRedelivery: the ack timeout redelivers a
// message to its puller while the puller's nack is on the way; the broker
// settles the redelivery (same id). The model allows that redelivery,
// and no other inside the nack's delay.
func TestModelNackCrossingItsRedelivery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		redeliver time.Duration // after the first delivery
		violated  bool
	}{
		{"after the ack timeout", modelAckTimeout, false},
		{"well within the ack timeout", 10 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Now()
			q := newQueueModel(modelMaxAttempts, modelAckTimeout)
			q.now = func() time.Time { return clock }
			p := &modelPuller{id: 1, env: true}
			q.pushStarted(1)
			q.pushConfirmed(1, 7)
			q.delivered(p, 1, 7, 1)
			clock = clock.Add(tc.redeliver)
			q.nackSending(p, q.msgs[1])
			sent := clock
			clock = clock.Add(time.Millisecond)
			q.delivered(p, 1, 7, 2)
			q.settleResult(p, q.msgs[1], false, 300*time.Millisecond, sent, false, false)
			if _, violated := q.report(); violated != tc.violated {
				t.Fatalf("violated %v, want %v:\n%s", violated, tc.violated, q.traceAround(20))
			}
		})
	}
}

// TestModelCrashUndoesOnlyUnsyncedSettlements: after a crash, an acked
// message may come back only when no confirmed push followed its ack.
func TestModelCrashUndoesOnlyUnsyncedSettlements(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pushes   int // confirmed after the ack, before the crash
		violated bool
	}{
		{"not synced", 0, false},
		{"synced by a later push", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueueModel(modelMaxAttempts, modelAckTimeout)
			p := &modelPuller{id: 1, env: true}
			q.pushStarted(1)
			q.pushConfirmed(1, 7)
			q.delivered(p, 1, 7, 1)
			q.settleResult(p, q.msgs[1], true, 0, time.Now(), false, false)
			for i := range tc.pushes {
				q.pushStarted(2 + i)
				q.pushConfirmed(2+i, uint64(8+i))
			}
			q.pullerClosed(p)
			q.restarted()
			q.crashed()
			again := &modelPuller{id: 2, env: true}
			q.delivered(again, 1, 7, 1)
			q.settleResult(again, q.msgs[1], true, 0, time.Now(), false, false)
			if _, violated := q.report(); violated != tc.violated {
				t.Fatalf("violated %v, want %v:\n%s", violated, tc.violated, q.traceAround(20))
			}
		})
	}
}

// TestModelRefusedNackOfAnOlderDelivery: a nack refused as unknown_id is a
// violation when its puller got the message well within the ack timeout
// before sending it, not when the hold it names began after it was sent.
func TestModelRefusedNackOfAnOlderDelivery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		later    bool // the puller got the message again after the nack was sent
		violated bool
	}{
		{"refused within the ack timeout", false, true},
		{"redelivered after it was sent", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Now()
			q := newQueueModel(modelMaxAttempts, modelAckTimeout)
			q.now = func() time.Time { return clock }
			p := &modelPuller{id: 1, env: true}
			q.pushStarted(1)
			q.pushConfirmed(1, 7)
			q.delivered(p, 1, 7, 1)
			clock = clock.Add(200 * time.Millisecond)
			sent := clock
			q.nackSending(p, q.msgs[1])
			if tc.later {
				clock = clock.Add(4 * time.Second)
				q.delivered(p, 1, 7, 2)
			}
			q.settleResult(p, q.msgs[1], false, 300*time.Millisecond, sent, true, false)
			if _, violated := q.report(); violated != tc.violated {
				t.Fatalf("violated %v, want %v:\n%s", violated, tc.violated, q.traceAround(20))
			}
		})
	}
}

// TestModelCrashUndoneDeadLetter: a crash undid a dead-letter move no
// synced write followed, so the message waits in its queue again, and a
// raw puller that leaves may have had it (at most once): it is then
// neither a dead letter nor delivered, which is allowed. Once a confirmed
// push followed the move, it must be a dead letter; with no raw puller it
// must come back; a queue that expired since took it.
func TestModelCrashUndoneDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pushes    int  // confirmed after the nack, before the crash
		expire    bool // the queue expired after the nack, before the crash
		rawLeaves bool // a raw puller leaves after the crash, having read nothing
		violated  bool
		lost      int // counted lost to a raw puller
		expired   int // counted expired
	}{
		{"not synced, a raw puller left", 0, false, true, false, 1, 0},
		{"synced by a later push, a raw puller left", 1, false, true, true, 1, 0},
		{"not synced, no raw puller", 0, false, false, true, 0, 0},
		{"its queue expired since", 0, true, false, false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueueModel(modelMaxAttempts, modelAckTimeout)
			p := &modelPuller{id: 1, env: true}
			q.pushStarted(1)
			q.pushConfirmed(1, 7)
			q.delivered(p, 1, 7, modelMaxAttempts)
			q.nackSending(p, q.msgs[1])
			q.settleResult(p, q.msgs[1], false, 0, time.Now(), false, false)
			for i := range tc.pushes {
				q.pushStarted(2 + i)
				q.pushConfirmed(2+i, uint64(8+i))
			}
			q.pullerClosed(p)
			if tc.expire {
				q.queueExpired(true)
			}
			q.restarted()
			q.crashed()
			if tc.rawLeaves {
				q.pullerClosed(&modelPuller{id: 2})
			}
			q.finish(nil)
			if _, violated := q.report(); violated != tc.violated {
				t.Fatalf("violated %v, want %v:\n%s", violated, tc.violated, q.traceAround(20))
			}
			if q.counts.rawLost != tc.lost || q.counts.expired != tc.expired {
				t.Fatalf("%d lost to a raw puller, %d expired; want %d, %d:\n%s", q.counts.rawLost, q.counts.expired, tc.lost, tc.expired, q.traceAround(20))
			}
		})
	}
}
