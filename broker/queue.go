package broker

import "sync"

// A Puller takes messages from a work queue for one connection. Offer
// must not block. The puller settles every delivery it was offered with
// Delivery.Done once it has handed it on; deliveries it still holds when it
// leaves go back to the front of the queue for another puller.
type Puller interface {
	Offer(d *Delivery)
}

// PullOptions configures one puller.
type PullOptions struct {
	// Prefetch is how many deliveries the puller may hold unsettled at
	// once. Default 16.
	Prefetch int
}

// DefaultPrefetch is the default of PullOptions.Prefetch.
const DefaultPrefetch = 16

// Delivery is one message handed to one puller.
type Delivery struct {
	Message *Message
	Attempt int // 1 on the first delivery

	q      *queue
	holder *pullerSlot // nil once settled or requeued
}

// Done settles d: the puller has handed the message on, and takes its next
// one. Calling Done again, or after the puller left, does nothing.
func (d *Delivery) Done() {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	s := d.holder
	if s == nil {
		return
	}
	d.holder = nil
	s.held = removeDelivery(s.held, d)
	s.credit++
	q.dispatch()
}

func removeDelivery(ds []*Delivery, d *Delivery) []*Delivery {
	for i, x := range ds {
		if x == d {
			copy(ds[i:], ds[i+1:])
			ds[len(ds)-1] = nil
			return ds[:len(ds)-1]
		}
	}
	return ds
}

type pullerSlot struct {
	p      Puller
	credit int
	held   []*Delivery // in the order offered
}

// queue is one push/pull work queue. Messages wait in pending until a
// puller has credit; pullers are served round-robin in join order.
type queue struct {
	topic Topic

	mu      sync.Mutex
	pending []*Delivery // FIFO from head
	head    int
	pullers []*pullerSlot
	next    int  // the puller whose turn it is, modulo len(pullers)
	deleted bool // removed from the broker: look the queue up again
}

func (q *queue) waiting() int { return len(q.pending) - q.head }

func (q *queue) popFront() *Delivery {
	d := q.pending[q.head]
	q.pending[q.head] = nil
	q.head++
	if q.head == len(q.pending) {
		q.pending, q.head = q.pending[:0], 0
	} else if q.head > 1024 && q.head > len(q.pending)/2 {
		n := copy(q.pending, q.pending[q.head:])
		clear(q.pending[n:])
		q.pending, q.head = q.pending[:n], 0
	}
	return d
}

// pushFront puts ds back at the head of the queue, keeping their order.
func (q *queue) pushFront(ds []*Delivery) {
	if len(ds) == 0 {
		return
	}
	rest := q.pending[q.head:]
	merged := make([]*Delivery, 0, len(ds)+len(rest))
	merged = append(append(merged, ds...), rest...)
	q.pending, q.head = merged, 0
}

// dispatch hands waiting messages to pullers with credit, round-robin;
// q.mu must be held.
func (q *queue) dispatch() {
	for q.waiting() > 0 {
		s := q.pick()
		if s == nil {
			return
		}
		d := q.popFront()
		d.Attempt++
		d.holder = s
		s.held = append(s.held, d)
		s.credit--
		s.p.Offer(d)
	}
}

// pick returns the next puller in rotation that has credit, or nil.
func (q *queue) pick() *pullerSlot {
	n := len(q.pullers)
	for i := range n {
		idx := (q.next + i) % n
		if s := q.pullers[idx]; s.credit > 0 {
			// Left unwrapped: a puller joining now is next after idx.
			q.next = idx + 1
			return s
		}
	}
	return nil
}

// removePuller takes s out of the rotation, keeping the turn where it was,
// and requeues what s held.
func (q *queue) removePuller(s *pullerSlot) {
	for i, x := range q.pullers {
		if x != s {
			continue
		}
		q.pullers = append(q.pullers[:i], q.pullers[i+1:]...)
		if i < q.next {
			q.next--
		}
		break
	}
	for _, d := range s.held {
		d.holder = nil
	}
	q.pushFront(s.held)
	s.held = nil
}

// queue returns the live queue for topic, creating it when create is set.
func (b *Broker) queue(topic Topic, create bool) *queue {
	b.queuesMu.RLock()
	q := b.queues[topic]
	b.queuesMu.RUnlock()
	if q != nil || !create {
		return q
	}
	b.queuesMu.Lock()
	defer b.queuesMu.Unlock()
	if q = b.queues[topic]; q == nil {
		q = &queue{topic: topic}
		b.queues[topic] = q
	}
	return q
}

// lockQueue returns the queue for topic, created if needed, with its lock
// held.
func (b *Broker) lockQueue(topic Topic) *queue {
	for {
		q := b.queue(topic, true)
		q.mu.Lock()
		if !q.deleted {
			return q
		}
		q.mu.Unlock()
	}
}

// dropIfIdle removes q from the broker when nothing uses it; q.mu must be
// held, and is released.
func (b *Broker) dropIfIdle(q *queue) {
	idle := len(q.pullers) == 0 && q.waiting() == 0
	if idle {
		q.deleted = true
	}
	q.mu.Unlock()
	if idle {
		b.queuesMu.Lock()
		if b.queues[q.topic] == q {
			delete(b.queues, q.topic)
		}
		b.queuesMu.Unlock()
	}
}

// Push accepts m on the push/pull namespace. It waits in m.Topic's queue
// until a puller takes it; exactly one puller gets it. A queue holding
// Options.QueueLimit messages refuses more with ErrQueueFull.
func (b *Broker) Push(m *Message) error {
	q := b.lockQueue(m.Topic)
	defer q.mu.Unlock()
	if q.waiting() >= b.opts.QueueLimit {
		return ErrQueueFull
	}
	b.pubMu.Lock()
	b.stamp(m)
	b.pubMu.Unlock()
	q.pending = append(q.pending, &Delivery{Message: m, q: q})
	q.dispatch()
	return nil
}

// Pull makes p a puller of topic's queue until the returned function is
// called. Leaving requeues what p still holds.
func (b *Broker) Pull(topic Topic, p Puller, opts PullOptions) (leave func()) {
	if opts.Prefetch <= 0 {
		opts.Prefetch = DefaultPrefetch
	}
	s := &pullerSlot{p: p, credit: opts.Prefetch}
	q := b.lockQueue(topic)
	q.pullers = append(q.pullers, s)
	q.dispatch()
	q.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			q.removePuller(s)
			q.dispatch()
			b.dropIfIdle(q)
		})
	}
}

// QueueStats describes one work queue.
type QueueStats struct {
	Topic    Topic
	Waiting  int // messages no puller holds yet
	InFlight int // messages offered to pullers and not yet settled
	Pullers  int
}

// Queues returns the stats of every live queue.
func (b *Broker) Queues() []QueueStats {
	b.queuesMu.RLock()
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.queuesMu.RUnlock()
	stats := make([]QueueStats, 0, len(qs))
	for _, q := range qs {
		q.mu.Lock()
		st := QueueStats{Topic: q.topic, Waiting: q.waiting(), Pullers: len(q.pullers)}
		for _, s := range q.pullers {
			st.InFlight += len(s.held)
		}
		q.mu.Unlock()
		stats = append(stats, st)
	}
	return stats
}
