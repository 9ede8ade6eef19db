package broker

import (
	"fmt"
	"time"
)

// joinRemote registers one more local puller of q with the cluster,
// opening q's hold on the shared queue for the first; q.mu is held.
func (q *queue) joinRemote(opts PullOptions) error {
	if q.remote == nil {
		r, err := q.b.qbp.OpenQueue(q.topic, q.policy, queueFeed{q})
		if err != nil {
			return err
		}
		q.remote = r
	}
	if err := q.remote.Join(opts, len(q.pullers)+1); err != nil {
		if len(q.pullers) == 0 {
			q.closeRemote()
		}
		return err
	}
	return nil
}

// leaveRemote updates the cluster after a local puller left, letting go
// of the shared queue with the last; q.mu is held.
func (q *queue) leaveRemote() {
	if len(q.pullers) > 0 {
		q.remote.Leave(len(q.pullers), q.exclusive)
		return
	}
	q.closeRemote()
}

// closeRemote lets go of the shared queue: what waits here goes back, and
// q leaves the broker (the cluster keeps the queue); q.mu is held.
func (q *queue) closeRemote() {
	q.remote.Close()
	q.remote = nil
	q.nakSurplus()
	q.deleted = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.b.queuesMu.Lock()
	if q.b.queues[q.topic] == q {
		delete(q.b.queues, q.topic)
	}
	q.b.queuesMu.Unlock()
}

// wantRemote gives back what no local puller can take now, and asks the
// cluster for as many messages as the pullers can take: their credit, and
// under a byte budget as many as fit, at the size of the last message the
// cluster handed over; q.mu is held.
func (q *queue) wantRemote() {
	q.nakSurplus()
	if q.remote == nil {
		return
	}
	n := 0
	for _, s := range q.pullers {
		n += s.room(q.lastSize)
	}
	q.remote.Want(n)
}

// room estimates how many messages of about size bytes s may take now. An
// unknown size (0) counts as a whole budget: one message for an empty
// puller, so that a queue of big messages is not fetched only to be
// given back.
func (s *pullerSlot) room(size int) int {
	if s.credit <= 0 || s.stopped {
		return 0
	}
	if s.maxBytes <= 0 {
		return s.credit
	}
	if size <= 0 {
		size = s.maxBytes
	}
	n := max(s.maxBytes-s.heldBytes, 0) / size
	if len(s.held) == 0 {
		n = max(n, 1)
	}
	return min(n, s.credit)
}

// nakSurplus gives back to the cluster what waits here with no puller to
// take it: another broker's pullers may.
func (q *queue) nakSurplus() {
	for len(q.pending) > q.head {
		d := q.popFront()
		if d.Attempt < d.remote {
			d.settler.Return() // this delivery was no attempt
		} else {
			d.settler.Nak(0)
		}
	}
}

// retryRemote gives d back to the cluster for another attempt, or makes
// it a dead letter there.
func (q *queue) retryRemote(d *Delivery, delay time.Duration) {
	if d.Attempt >= q.policy.MaxAttempts {
		d.settler.Dead(DeadLetter{ID: d.ID(), Message: d.Message, Attempts: d.Attempt, LastError: d.LastError, Died: q.b.opts.Now()})
		return
	}
	d.settler.Nak(delay)
}

// queueFeed is the QueueFeed of one queue.
type queueFeed struct{ q *queue }

// Offer dispatches a message the cluster handed this broker.
func (f queueFeed) Offer(m *Message, attempt int, s Settler) {
	q := f.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if attempt > q.policy.MaxAttempts {
		// Its last attempt ended without a word: an ack timeout, or the
		// broker that held it went away.
		s.Dead(DeadLetter{ID: m.Seq, Message: m, Attempts: attempt - 1, Died: q.b.opts.Now(),
			LastError: fmt.Sprintf("not acknowledged within %s", q.policy.AckTimeout)})
		return
	}
	if q.remote == nil {
		s.Return()
		return
	}
	q.lastSize = len(m.Payload)
	q.pending = append(q.pending, &Delivery{Message: m, Attempt: attempt - 1, q: q, settler: s, remote: attempt})
	q.dispatch()
	q.scheduleLocked()
}

// Evict closes every local puller: another broker took the queue over.
func (f queueFeed) Evict(reason string) {
	q := f.q
	q.mu.Lock()
	evicted := append([]*pullerSlot(nil), q.pullers...)
	for _, s := range evicted {
		q.removePuller(s)
	}
	if q.remote != nil {
		q.closeRemote()
	}
	q.mu.Unlock()
	for _, s := range evicted {
		s.p.Evict(reason)
	}
}

var _ QueueFeed = queueFeed{}
