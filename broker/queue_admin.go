package broker

import (
	"sort"
	"time"
)

// QueueStats describes one work queue.
type QueueStats struct {
	Topic     Topic     `json:"topic"`
	Waiting   int       `json:"waiting"`   // messages no puller holds
	InFlight  int       `json:"in_flight"` // offered and not yet settled
	Dead      int       `json:"dead"`      // dead letters
	Pullers   int       `json:"pullers"`
	Exclusive bool      `json:"exclusive"`
	Durable   bool      `json:"durable"`
	LastUsed  time.Time `json:"last_used"`
	TTL       Duration  `json:"ttl"`
	// Bytes is what the queue holds in memory (waiting, in flight and
	// dead letters; payload plus a small overhead each), counted against
	// the broker's max_memory; WaitingBytes, of it, what counts against
	// MaxBytes. On a cluster, where JetStream holds the queue, both are 0.
	Bytes        int64 `json:"bytes"`
	WaitingBytes int64 `json:"waiting_bytes"`
	MaxBytes     int64 `json:"max_bytes"`
}

// Duration marshals as a Go duration string ("48h0m0s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Queues returns the stats of every live queue, by topic.
func (b *Broker) Queues() []QueueStats {
	if b.qbp != nil {
		stats, err := b.qbp.QueueStats()
		if err != nil {
			b.opts.Logger.Warn("cluster: failed to list queues", "err", err)
			return []QueueStats{}
		}
		return stats
	}
	b.queuesMu.Lock()
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.queuesMu.Unlock()
	stats := make([]QueueStats, 0, len(qs))
	for _, q := range qs {
		q.mu.Lock()
		stats = append(stats, QueueStats{
			Topic: q.topic, Waiting: q.waiting(), InFlight: q.inFlight(), Dead: len(q.dead),
			Pullers: len(q.pullers), Exclusive: q.exclusive, Durable: q.durable,
			LastUsed: q.lastUsed, TTL: Duration(q.policy.TTL),
			Bytes: q.bytes + q.reservedBytes, WaitingBytes: q.waitingBytes(), MaxBytes: q.policy.MaxBytes,
		})
		q.mu.Unlock()
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Topic < stats[j].Topic })
	return stats
}

// withQueue runs fn on topic's queue with its lock held.
func (b *Broker) withQueue(topic Topic, fn func(q *queue) error) error {
	q := b.queue(topic)
	if q == nil {
		return ErrNoQueue
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return ErrNoQueue
	}
	return fn(q)
}

// DeadLetters returns the dead letters of topic's queue, oldest first.
func (b *Broker) DeadLetters(topic Topic) ([]DeadLetter, error) {
	if b.qbp != nil {
		return b.qbp.DeadLetters(topic)
	}
	var out []DeadLetter
	err := b.withQueue(topic, func(q *queue) error {
		for _, dl := range q.dead {
			out = append(out, *dl)
		}
		return nil
	})
	return out, err
}

// Requeue moves the dead letter id (every one when id is 0) back to the
// queue for a fresh set of attempts, and returns how many moved.
func (b *Broker) Requeue(topic Topic, id uint64) (int, error) {
	if b.qbp != nil {
		return b.qbp.Requeue(topic, id)
	}
	n := 0
	err := b.withQueue(topic, func(q *queue) error {
		kept := q.dead[:0]
		var back []*Delivery
		for _, dl := range q.dead {
			if id != 0 && dl.ID != id {
				kept = append(kept, dl)
				continue
			}
			back = append(back, &Delivery{Message: dl.Message, q: q, LastError: dl.LastError})
			q.deadBytes -= heldSize(dl.Message)
			if q.durable {
				b.storeErr("requeue a dead letter", b.opts.Store.PutQueued(q.topic, QueuedMessage{Message: dl.Message, LastError: dl.LastError}, false))
			}
		}
		clear(q.dead[len(kept):])
		q.dead = kept
		n = len(back)
		if n == 0 {
			return ErrNoDeadLetters
		}
		q.pending = append(q.pending, back...)
		q.dispatch()
		return nil
	})
	return n, err
}

// PopDead removes and returns the oldest dead letter of topic's queue.
func (b *Broker) PopDead(topic Topic) (*DeadLetter, error) {
	if b.qbp != nil {
		return b.qbp.PopDead(topic)
	}
	var dl *DeadLetter
	err := b.withQueue(topic, func(q *queue) error {
		if len(q.dead) == 0 {
			return ErrNoDeadLetters
		}
		dl = q.dead[0]
		q.dead = q.dead[1:]
		q.deadBytes -= heldSize(dl.Message)
		q.drop(heldSize(dl.Message))
		if q.durable {
			b.storeErr("delete a popped dead letter", b.opts.Store.DeleteQueued(q.topic, dl.ID))
		}
		return nil
	})
	return dl, err
}

// PurgeDead deletes every dead letter of topic's queue and returns how
// many there were.
func (b *Broker) PurgeDead(topic Topic) (int, error) {
	if b.qbp != nil {
		return b.qbp.PurgeDead(topic)
	}
	n := 0
	err := b.withQueue(topic, func(q *queue) error {
		n = len(q.dead)
		for _, dl := range q.dead {
			if q.durable {
				b.storeErr("delete a purged dead letter", b.opts.Store.DeleteQueued(q.topic, dl.ID))
			}
		}
		q.dead = nil
		q.drop(q.deadBytes)
		q.deadBytes = 0
		return nil
	})
	return n, err
}

// QueueExists reports whether topic has a live queue.
func (b *Broker) QueueExists(topic Topic) bool {
	if b.qbp != nil {
		ok, err := b.qbp.QueueExists(topic)
		if err != nil {
			b.opts.Logger.Warn("cluster: failed to look a queue up", "topic", topic, "err", err)
		}
		return ok
	}
	return b.queue(topic) != nil
}
