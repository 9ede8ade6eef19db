package nats

import (
	"sync"
	"time"
)

// JetStream may deliver a queued message again while this broker still
// holds it, or just after this broker settled it:
//
//   - NATS Server before 2.10.14 (nats-server#5305): when a pull request
//     has gone (it expired, or the broker that sent it died) by the time
//     the consumer picks a redelivered message for it, the consumer steps
//     back its next-message pointer as if that message were new, and then
//     delivers the last new message once more, as a first delivery
//     (NumDelivered 1), while its first copy is still out;
//   - any server: a message held longer than the ack wait (a slow raw
//     puller) is redelivered.
//
// A second copy handed out breaks what raw pullers are promised (at most
// once) and what acking ones are (no two holders within the ack timeout).
// taken remembers the stream sequences this broker took from one queue,
// and drops a delivery of one it holds, or a first delivery of one it has
// seen before: a first delivery can come only once. JetStream acks by
// stream sequence, so the copy this broker holds settles the dropped one
// too. A copy delivered to another broker is beyond it.

// takenKeep is how long a settled sequence is remembered: a repeated first
// delivery comes when the consumer next delivers, soon after in every case
// seen; this bounds the memory. A sequence held longer than that was
// surely lost track of here: it is handed out again rather than stuck.
const takenKeep = 2 * time.Minute

type settledSeq struct {
	acked bool
	at    time.Time
}

type taken struct {
	mu        sync.Mutex
	held      map[uint64]time.Time  // offered here, not settled yet: since when
	settled   map[uint64]settledSeq // settled here lately
	lastPrune time.Time
}

func newTaken() *taken {
	return &taken{held: make(map[uint64]time.Time), settled: make(map[uint64]settledSeq)}
}

// take reports whether the delivery of seq, its delivered-th, may be
// handed out, noting it held if so; when not, acked tells that this broker
// acknowledged seq already.
func (t *taken) take(seq uint64, delivered uint64, now time.Time) (ok, acked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(now)
	if since, ok := t.held[seq]; ok && now.Sub(since) <= takenKeep {
		return false, false
	}
	if s, seen := t.settled[seq]; seen && delivered <= 1 {
		return false, s.acked
	}
	delete(t.settled, seq)
	t.held[seq] = now
	return true, false
}

// settle notes that this broker acknowledged seq, or gave it back.
func (t *taken) settle(seq uint64, acked bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.held, seq)
	if s := t.settled[seq]; !s.acked { // an ack is not undone by a later give-back
		t.settled[seq] = settledSeq{acked: acked, at: now}
	}
}

// prune forgets the settlements older than takenKeep; t.mu is held.
func (t *taken) prune(now time.Time) {
	if now.Sub(t.lastPrune) < takenKeep/4 {
		return
	}
	t.lastPrune = now
	for seq, s := range t.settled {
		if now.Sub(s.at) > takenKeep {
			delete(t.settled, seq)
		}
	}
}
