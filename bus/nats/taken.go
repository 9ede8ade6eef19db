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

// takenKeep is how long a settled sequence is remembered, and takenMax
// how many at most: a repeated first delivery comes when the consumer next
// delivers, soon after in every case seen; this bounds the memory of a
// busy queue. A sequence held longer than takenKeep was surely lost track
// of here: it is handed out again rather than stuck.
const (
	takenKeep = 2 * time.Minute
	takenMax  = 1 << 14
)

type settledSeq struct {
	seq   uint64
	acked bool
	at    time.Time
}

type taken struct {
	mu      sync.Mutex
	held    map[uint64]time.Time  // offered here, not settled yet: since when
	settled map[uint64]settledSeq // settled here lately
	order   []settledSeq          // settled, oldest first from head (some since taken again)
	head    int
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
	if s, ok := t.settled[seq]; ok && s.acked {
		return // an ack is not undone by a later give-back
	}
	s := settledSeq{seq: seq, acked: acked, at: now}
	t.settled[seq] = s
	t.order = append(t.order, s)
	t.prune(now)
}

// prune forgets the settlements older than takenKeep, and the oldest past
// takenMax; t.mu is held.
func (t *taken) prune(now time.Time) {
	for t.head < len(t.order) && (len(t.order)-t.head > takenMax || now.Sub(t.order[t.head].at) > takenKeep) {
		if s := t.order[t.head]; t.settled[s.seq] == s {
			delete(t.settled, s.seq)
		}
		t.head++
	}
	if t.head > 1024 && t.head > len(t.order)/2 {
		n := copy(t.order, t.order[t.head:])
		t.order, t.head = t.order[:n], 0
	}
}
