package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Puller takes messages from a work queue for one connection. Offer
// must not block. A raw puller claims each delivery just before writing it
// (Delivery.Claim), then settles it with Done once written (at most once)
// or gives it back with Release; an acking puller settles with Ack or
// Nack. What a puller still holds unclaimed when it leaves goes back to
// the queue.
type Puller interface {
	Offer(d *Delivery)
	// Evict tells the puller it lost its place (an exclusive takeover); it
	// should close its connection with reason.
	Evict(reason string)
}

// PullOptions configures one puller.
type PullOptions struct {
	// Prefetch is how many deliveries the puller may hold unsettled at
	// once. Default 16.
	Prefetch int
	// MaxBytes bounds the payload bytes the puller may hold unsettled at
	// once, so that what it is offered fits what its connection may hold.
	// A puller holding nothing may always take one message, however big.
	// Zero: no bound.
	MaxBytes int
	// Ack makes deliveries wait for Ack or Nack; without it a delivery is
	// settled by Done (at most once).
	Ack bool
	// Exclusive makes the puller the queue's only one while it stays.
	Exclusive bool
	// Takeover evicts the queue's current pullers and takes their place as
	// the exclusive puller.
	Takeover bool
	// MustExist refuses with ErrNoQueue when the queue does not exist.
	MustExist bool
	// TTL sets the queue's lifetime when this puller creates it.
	TTL time.Duration
}

// PushOptions configures one push.
type PushOptions struct {
	MustExist bool          // refuse with ErrNoQueue when the queue does not exist
	TTL       time.Duration // the queue's lifetime when this push creates it
}

// Queue defaults, used when the bus's QueuePolicy leaves them zero.
const (
	DefaultPrefetch    = 16
	DefaultMaxAttempts = 5
	DefaultAckTimeout  = 30 * time.Second
	DefaultQueueTTL    = 48 * time.Hour
)

// Queue errors.
var (
	ErrNoQueue       = errors.New("broker: queue does not exist")
	ErrExclusive     = errors.New("broker: queue has an exclusive puller")
	ErrQueueBusy     = errors.New("broker: queue has other pullers")
	ErrUnknownID     = errors.New("broker: no such delivery held by this puller")
	ErrNoDeadLetters = errors.New("broker: no such dead letter")
)

// Delivery is one message handed to one puller.
type Delivery struct {
	Message   *Message
	Attempt   int    // 1 on the first delivery
	LastError string // why the previous attempt failed

	q         *queue
	settler   Settler     // on a QueueBackplane: settles it there
	remote    int         // on a QueueBackplane: the attempt it was handed over for
	holder    *pullerSlot // nil while waiting, settled, or handed to another
	claimed   bool        // its puller is writing it: it stays with that puller
	taken     bool        // a raw puller's, removed from the store before its write (Take)
	deadline  time.Time   // ack mode: redelivered after this
	notBefore time.Time   // nacked with a delay: not offered before this
}

// ID identifies the message across redeliveries and restarts: its
// sequence number.
func (d *Delivery) ID() uint64 { return d.Message.Seq }

// Claim reports whether a puller may write d: false once d was handed to
// another puller (its puller left, or was taken over), when writing it
// would deliver the message twice. A claimed delivery stays with its
// puller, even when it leaves, until its write ends: Done or Release for
// a raw puller, Sent for an acking one.
func (d *Delivery) Claim() bool {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if d.holder == nil {
		return false
	}
	d.claimed = true
	return true
}

// Take removes claimed raw deliveries of durable queues from the store,
// on disk, before their frames are written: a crash then cannot bring
// back a message a raw puller may have read (at most once). The removals
// of one call share one synced write, and concurrent calls share fsyncs.
// Deliveries of acking pullers, of queues in memory or not claimed are
// left alone. When Take fails, the deliveries are not written: Release
// gives them back.
func Take(ds []*Delivery) error {
	var q *queue
	var ids []uint64
	var taking []*Delivery
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		if err := q.b.opts.Store.TakeQueued(q.topic, ids); err != nil {
			return fmt.Errorf("failed to remove pulled messages from the store: %w", err)
		}
		q.mu.Lock()
		for _, d := range taking {
			d.taken = true
		}
		q.mu.Unlock()
		ids, taking = ids[:0], taking[:0]
		return nil
	}
	for _, d := range ds {
		if d.q != q {
			if err := flush(); err != nil {
				return err
			}
			q = d.q
		}
		q.mu.Lock()
		take := q.durable && d.settler == nil && d.claimed && !d.taken && d.holder != nil && !d.holder.ack
		q.mu.Unlock()
		if take {
			ids = append(ids, d.ID())
			taking = append(taking, d)
		}
	}
	return flush()
}

// NeedsTake reports whether d must be taken (Take) before it is written:
// a raw puller's delivery from a durable queue.
func (d *Delivery) NeedsTake() bool {
	return d.q.durable && d.settler == nil
}

// Done settles d for a raw puller once written. Calling it again, or for
// a delivery handed to another puller meanwhile, does nothing: the copy
// the other puller holds is its own.
func (d *Delivery) Done() {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := d.holder; s != nil {
		q.settle(s, d)
		q.dispatch()
	}
}

// Release gives back a claimed delivery its raw puller could not write
// (whole): it goes to the head of the queue, the attempt not counted. The
// puller is offered nothing more: its connection is going.
func (d *Delivery) Release() {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	s := d.holder
	if s == nil || !d.claimed {
		return
	}
	q.unhold(s, d)
	s.stopped = true
	d.Attempt--
	if d.taken && !q.deleted {
		// Not written: back in the store, before anyone else can settle it.
		d.taken = false
		q.b.storeErr("put back a message not written", q.b.opts.Store.PutQueued(q.topic, QueuedMessage{
			Message: d.Message, Attempts: d.Attempt, LastError: d.LastError}, false))
	}
	q.pushFront(d)
	q.dispatch()
	q.scheduleLocked()
}

// Sent tells that an acking puller's frame of d was written, or failed
// to be: d now waits for its ack. When its puller left meanwhile (taken
// over, or gone), the ack can no longer come and d goes back to the queue
// with its attempt spent, as the puller may have started on it: at least
// once, but never beside another puller's copy while it is written.
func (d *Delivery) Sent() {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	s := d.holder
	if s == nil || !d.claimed {
		return
	}
	d.claimed = false
	if !s.left {
		return
	}
	q.unhold(s, d)
	q.giveBack(d.handBack())
	q.dispatch()
	q.scheduleLocked()
}

// giveBack returns an acking puller's delivery to the queue, or to the
// dead letters when it has had its attempts; q.mu is held. A cluster's
// delivery goes back to the cluster, which counts the attempts: handed to
// a puller here again, its next attempt would bear the number of this one
// once the cluster delivered it again.
func (q *queue) giveBack(d *Delivery) {
	if d.Attempt >= q.policy.MaxAttempts || d.settler != nil {
		q.retry(d, 0, "puller disconnected")
		return
	}
	d.LastError = "puller disconnected"
	q.pushFront(d)
}

// handBack returns d's message as a new delivery for the queue, leaving d
// with nothing: a frame of d still queued for its old puller can then be
// neither written (Claim) nor settle the new holder's delivery (Done).
func (d *Delivery) handBack() *Delivery {
	nd := *d
	nd.holder, nd.claimed = nil, false
	d.holder = nil
	return &nd
}

// size is what d counts against its puller's MaxBytes.
func (d *Delivery) size() int { return len(d.Message.Payload) }

// DeadLetter is a message that failed every attempt.
type DeadLetter struct {
	ID        uint64
	Message   *Message
	Attempts  int
	LastError string
	Died      time.Time
}

type pullerSlot struct {
	p         Puller
	ack       bool
	credit    int
	maxBytes  int // PullOptions.MaxBytes
	heldBytes int
	held      []*Delivery // in the order offered, so deadlines ascend
	stopped   bool        // it released a delivery: its connection is going
	left      bool        // removed from the queue; it keeps only what it is writing
}

// fits tells whether s may take a message of size bytes now.
func (s *pullerSlot) fits(size int) bool {
	if s.credit <= 0 || s.stopped {
		return false
	}
	return s.maxBytes <= 0 || len(s.held) == 0 || s.heldBytes+size <= s.maxBytes
}

// queue is one push/pull work queue. Messages wait in pending until a
// puller has credit; pullers are served round-robin in join order.
type queue struct {
	b       *Broker
	topic   Topic
	policy  QueuePolicy // defaults filled in
	durable bool

	mu        sync.Mutex
	pending   []*Delivery // FIFO from head
	head      int
	delayed   []*Delivery // nacked with a delay, by notBefore
	pullers   []*pullerSlot
	next      int // the puller whose turn it is, modulo len(pullers)
	exclusive bool
	dead      []*DeadLetter // oldest first
	lastUsed  time.Time
	timer     *time.Timer
	deleted   bool // removed from the broker: look the queue up again
	reserved  int  // pushes counted against the limit while being stored

	// Bytes held in memory (heldSize), charged to the broker's budget:
	// every message pushed here until it is settled, or as a dead letter
	// until it is removed. Deliveries a QueueBackplane hands over are the
	// cluster's and not counted.
	bytes         int64
	deadBytes     int64 // of bytes, the dead letters'
	reservedBytes int64 // of pushes being stored, not yet in bytes

	// remote is this broker's hold on the queue a QueueBackplane shares,
	// while it has pullers; pending then holds only what is being
	// dispatched, and the backplane keeps the rest.
	remote   RemoteQueue
	lastSize int // of the last message the QueueBackplane handed over
}

func (q *queue) waiting() int { return len(q.pending) - q.head + len(q.delayed) }

// waitingBytes is what counts against the queue's MaxBytes: the bytes of
// the messages no puller holds.
func (q *queue) waitingBytes() int64 {
	n := q.bytes - q.deadBytes + q.reservedBytes
	for _, s := range q.pullers {
		n -= int64(s.heldBytes) + int64(len(s.held))*messageOverhead
	}
	return max(n, 0)
}

func (q *queue) inFlight() int {
	n := 0
	for _, s := range q.pullers {
		n += len(s.held)
	}
	return n
}

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
func (q *queue) pushFront(ds ...*Delivery) {
	if len(ds) == 0 {
		return
	}
	rest := q.pending[q.head:]
	merged := make([]*Delivery, 0, len(ds)+len(rest))
	merged = append(append(merged, ds...), rest...)
	q.pending, q.head = merged, 0
}

// dispatch hands ready messages to pullers with credit, round-robin;
// q.mu must be held.
func (q *queue) dispatch() {
	taken := false
	defer func() {
		if taken {
			q.b.mem.wake() // the queue is below its limits again
		}
	}()
	for len(q.pending) > q.head {
		s := q.pick(q.pending[q.head].size())
		if s == nil {
			break
		}
		d := q.popFront()
		taken = true
		d.Attempt++
		d.holder = s
		if s.ack {
			d.deadline = q.b.opts.Now().Add(q.policy.AckTimeout)
			q.scheduleLocked()
		}
		s.held = append(s.held, d)
		s.heldBytes += d.size()
		s.credit--
		s.p.Offer(d)
	}
	if q.b.qbp != nil {
		q.wantRemote()
	}
}

// pick returns the next puller in rotation that may take a message of
// size bytes, or nil.
func (q *queue) pick(size int) *pullerSlot {
	n := len(q.pullers)
	for i := range n {
		idx := (q.next + i) % n
		if s := q.pullers[idx]; s.fits(size) {
			// Left unwrapped: a puller joining now is next after idx.
			q.next = idx + 1
			return s
		}
	}
	return nil
}

// unhold takes d from s, returning s's credit.
func (q *queue) unhold(s *pullerSlot, d *Delivery) {
	for i, x := range s.held {
		if x == d {
			s.held = append(s.held[:i], s.held[i+1:]...)
			s.heldBytes -= d.size()
			break
		}
	}
	d.holder, d.claimed = nil, false
	s.credit++
}

// settle ends d's life: it was handed on (raw) or acknowledged.
func (q *queue) settle(s *pullerSlot, d *Delivery) {
	q.unhold(s, d)
	q.lastUsed = q.b.opts.Now()
	if d.settler != nil {
		d.settler.Ack()
		return
	}
	if !q.deleted { // an expired queue gave back all it held
		q.drop(heldSize(d.Message))
	}
	if q.durable && !d.taken {
		q.b.storeErr("delete a settled queue message", q.b.opts.Store.DeleteQueued(q.topic, d.ID()))
	}
}

// retry puts d back for another attempt, after delay, or makes it a dead
// letter when it has had its attempts.
func (q *queue) retry(d *Delivery, delay time.Duration, reason string) {
	if reason != "" {
		d.LastError = reason
	}
	if d.settler != nil {
		q.retryRemote(d, delay)
		return
	}
	if d.Attempt >= q.policy.MaxAttempts {
		dl := &DeadLetter{ID: d.ID(), Message: d.Message, Attempts: d.Attempt, LastError: d.LastError, Died: q.b.opts.Now()}
		q.dead = append(q.dead, dl)
		q.deadBytes += heldSize(d.Message)
		if q.durable {
			q.b.storeErr("record a dead letter", q.b.opts.Store.PutQueued(q.topic, queuedRecord(dl), false))
		}
		return
	}
	d.notBefore = time.Time{}
	if delay > 0 {
		d.notBefore = q.b.opts.Now().Add(delay)
	}
	if q.durable {
		q.b.storeErr("record an attempt", q.b.opts.Store.PutQueued(q.topic, QueuedMessage{
			Message: d.Message, Attempts: d.Attempt, LastError: d.LastError, NotBefore: d.notBefore}, false))
	}
	if delay <= 0 {
		q.pushFront(d)
		return
	}
	i := len(q.delayed)
	for i > 0 && q.delayed[i-1].notBefore.After(d.notBefore) {
		i--
	}
	q.delayed = append(q.delayed, nil)
	copy(q.delayed[i+1:], q.delayed[i:])
	q.delayed[i] = d
	q.scheduleLocked()
}

// removePuller takes s out of the rotation, keeping the turn where it was,
// and gives back what s held: a raw puller never wrote it (no attempt
// spent); an acking puller may have started on it (an attempt spent,
// and a cluster's delivery goes back to the cluster, see giveBack).
// What a puller is writing (claimed) stays with it until the write ends
// (Done, Release, Sent).
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
	if len(q.pullers) == 0 {
		q.exclusive = false
	}
	s.left = true
	held := s.held
	s.held, s.heldBytes = nil, 0
	var back []*Delivery
	for _, d := range held {
		if d.claimed {
			s.held = append(s.held, d)
			s.heldBytes += d.size()
			continue
		}
		d = d.handBack()
		if !s.ack {
			d.Attempt--
			back = append(back, d)
			continue
		}
		if d.Attempt >= q.policy.MaxAttempts || d.settler != nil {
			q.retry(d, 0, "puller disconnected")
		} else {
			d.LastError = "puller disconnected"
			back = append(back, d)
		}
	}
	q.pushFront(back...)
	q.lastUsed = q.b.opts.Now()
	q.scheduleLocked()
}

// scheduleLocked arms the queue's timer for its next deadline: an ack
// timeout, a delayed message becoming ready, or the queue's expiry.
func (q *queue) scheduleLocked() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range q.pullers {
		if s.ack && len(s.held) > 0 {
			earlier(s.held[0].deadline)
		}
	}
	if len(q.delayed) > 0 {
		earlier(q.delayed[0].notBefore)
	}
	if len(q.pullers) == 0 && q.reserved == 0 && q.b.qbp == nil {
		// On a QueueBackplane, the cluster expires queues; a push being
		// stored reschedules when it is done.
		earlier(q.lastUsed.Add(q.policy.TTL))
	}
	if next.IsZero() || q.deleted {
		if q.timer != nil {
			q.timer.Stop()
		}
		return
	}
	wait := next.Sub(q.b.opts.Now())
	if q.timer == nil {
		q.timer = time.AfterFunc(wait, q.tick)
	} else {
		q.timer.Reset(wait)
	}
}

// tick handles what is due: ack timeouts, delayed messages, expiry.
func (q *queue) tick() {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	now := q.b.opts.Now()
	for _, s := range q.pullers {
		for len(s.held) > 0 && s.ack && !s.held[0].deadline.After(now) {
			d := s.held[0]
			q.unhold(s, d)
			// A frame of d may still wait for s's socket (a slow reader):
			// the message goes on as a new delivery, which that frame can
			// neither be written for (Claim) nor settle.
			q.retry(d.handBack(), 0, fmt.Sprintf("not acknowledged within %s", q.policy.AckTimeout))
		}
	}
	var ready []*Delivery
	for len(q.delayed) > 0 && !q.delayed[0].notBefore.After(now) {
		ready = append(ready, q.delayed[0])
		q.delayed = q.delayed[1:]
	}
	q.pushFront(ready...)
	if len(q.pullers) == 0 && q.reserved == 0 && q.b.qbp == nil && !q.lastUsed.Add(q.policy.TTL).After(now) {
		dropped := q.waiting() + len(q.dead)
		q.deleted = true
		q.drop(q.bytes)
		q.deadBytes = 0
		if q.timer != nil {
			q.timer.Stop()
		}
		// Every record of q has a seq up to this one: a queue of the same
		// name made after q is forgotten only stores higher ones.
		upTo := q.b.LastSeq()
		q.mu.Unlock()
		q.b.expireQueue(q, dropped, upTo)
		return
	}
	q.dispatch()
	q.scheduleLocked()
	q.mu.Unlock()
}

// expireQueue removes q, which outlived its TTL unused, and its records:
// those with a seq up to upTo, so that a push to the queue made again in
// the meantime keeps its record.
func (b *Broker) expireQueue(q *queue, dropped int, upTo uint64) {
	b.queuesMu.Lock()
	if b.queues[q.topic] == q {
		delete(b.queues, q.topic)
	}
	b.queuesMu.Unlock()
	if q.durable {
		b.storeErr("delete an expired queue", b.opts.Store.DeleteQueue(q.topic, upTo))
	}
	b.opts.Logger.Info("queue expired", "topic", q.topic, "ttl", q.policy.TTL, "dropped", dropped)
}

// drop gives back n of the bytes q holds.
func (q *queue) drop(n int64) {
	q.bytes -= n
	q.b.mem.release(n)
}

// queuePolicy returns the queue settings for topic, defaults filled in.
func (b *Broker) queuePolicy(topic Topic) (QueuePolicy, bool) {
	pol := b.policies().Lookup(topic)
	return pol.Queue.WithDefaults(b.opts.QueueLimit), pol.Durable
}

// lockQueue returns topic's queue with its lock held, creating it with ttl
// (0: the policy's) unless mustExist.
func (b *Broker) lockQueue(topic Topic, mustExist bool, ttl time.Duration) (*queue, error) {
	for {
		b.queuesMu.Lock()
		q := b.queues[topic]
		if q == nil {
			if mustExist {
				b.queuesMu.Unlock()
				return nil, ErrNoQueue
			}
			policy, durable := b.queuePolicy(topic)
			if ttl > 0 {
				policy.TTL = ttl
			}
			q = &queue{b: b, topic: topic, policy: policy, durable: durable && b.opts.Store != nil, lastUsed: b.opts.Now()}
			b.queues[topic] = q
		}
		b.queuesMu.Unlock()
		q.mu.Lock()
		if !q.deleted {
			return q, nil
		}
		q.mu.Unlock()
	}
}

// Push accepts m on the push/pull namespace. It waits in m.Topic's queue
// until a puller takes it; exactly one puller gets it. On a durable bus it
// is on disk when Push returns. A queue holding its limit of messages or
// bytes, or a broker holding its memory budget, refuses more with a
// *QueueFullError (ErrQueueFull) naming the limit: wait on Room, then try
// again.
func (b *Broker) Push(m *Message, opts PushOptions) error {
	if b.qbp != nil {
		qp, _ := b.queuePolicy(m.Topic)
		if opts.TTL > 0 {
			qp.TTL = opts.TTL
		}
		return b.qbp.Push(m, qp, opts)
	}
	q, err := b.lockQueue(m.Topic, opts.MustExist, opts.TTL)
	if err != nil {
		return err
	}
	size := heldSize(m)
	if err := q.admit(size); err != nil {
		q.mu.Unlock()
		return err
	}
	b.pubMu.Lock()
	err = b.stamp(m)
	if err == nil {
		b.count(b.policies().Lookup(m.Topic).Bus, m, 0)
	}
	b.pubMu.Unlock()
	if err != nil {
		q.mu.Unlock()
		b.mem.release(size)
		return err
	}
	q.lastUsed = b.opts.Now()
	defer q.mu.Unlock()
	if q.durable {
		// Stored before any puller can see it, and outside the queue's
		// lock so that concurrent pushes share fsyncs; its slot is
		// reserved meanwhile so that the limit holds, and given back if
		// the write fails.
		q.reserved++
		q.reservedBytes += size
		q.mu.Unlock()
		err := b.opts.Store.PutQueued(m.Topic, QueuedMessage{Message: m}, true)
		q.mu.Lock()
		q.reserved--
		q.reservedBytes -= size
		if err != nil {
			b.mem.release(size)
			q.scheduleLocked()
			return fmt.Errorf("failed to store the message: %w", err)
		}
	}
	q.bytes += size
	q.pending = append(q.pending, &Delivery{Message: m, q: q})
	q.dispatch()
	q.scheduleLocked()
	return nil
}

// admit checks a push of size bytes against the queue's limits and
// charges it to the broker's budget; q.mu is held. A queue with nothing
// waiting takes a message of any size, so none is refused forever.
func (q *queue) admit(size int64) error {
	waiting := q.waiting() + q.reserved
	switch {
	case waiting >= q.policy.Limit:
		return &QueueFullError{Limit: "queue_limit", Value: int64(q.policy.Limit)}
	case waiting > 0 && q.waitingBytes()+size > q.policy.MaxBytes:
		return &QueueFullError{Limit: "queue.max_bytes", Value: q.policy.MaxBytes}
	case !q.b.mem.tryCharge(size):
		return &QueueFullError{Limit: "max_memory", Value: q.b.mem.limit}
	}
	return nil
}

// Pull makes p a puller of topic's queue until the returned function is
// called. Leaving gives back what p still holds.
func (b *Broker) Pull(topic Topic, p Puller, opts PullOptions) (leave func(), err error) {
	if opts.Prefetch <= 0 {
		opts.Prefetch = DefaultPrefetch
	}
	mustExist := opts.MustExist
	if b.qbp != nil {
		// The queue may exist on the cluster without a puller here.
		if mustExist {
			ok, err := b.qbp.QueueExists(topic)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, ErrNoQueue
			}
		}
		mustExist = false
	}
	q, err := b.lockQueue(topic, mustExist, opts.TTL)
	if err != nil {
		return nil, err
	}
	var evicted []*pullerSlot
	switch {
	case opts.Takeover:
		evicted = append(evicted, q.pullers...)
		for _, s := range evicted {
			q.removePuller(s)
		}
		opts.Exclusive = true
	case q.exclusive:
		q.mu.Unlock()
		return nil, ErrExclusive
	case opts.Exclusive && len(q.pullers) > 0:
		q.mu.Unlock()
		return nil, ErrQueueBusy
	}
	if b.qbp != nil {
		if err := q.joinRemote(opts); err != nil {
			q.mu.Unlock()
			for _, e := range evicted {
				e.p.Evict("taken over")
			}
			return nil, err
		}
	}
	s := &pullerSlot{p: p, ack: opts.Ack, credit: opts.Prefetch, maxBytes: opts.MaxBytes}
	q.pullers = append(q.pullers, s)
	q.exclusive = opts.Exclusive
	q.lastUsed = b.opts.Now()
	q.dispatch()
	q.scheduleLocked()
	q.mu.Unlock()
	for _, e := range evicted {
		e.p.Evict("taken over")
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.removePuller(s)
			q.dispatch()
			if q.remote != nil {
				q.leaveRemote()
			}
		})
	}, nil
}

// Ack settles the delivery id that p holds on topic.
func (b *Broker) Ack(topic Topic, p Puller, id uint64) error {
	return b.withHeld(topic, p, id, func(q *queue, s *pullerSlot, d *Delivery) {
		q.settle(s, d)
	})
}

// Nack gives the delivery id back for another attempt after delay; after
// the bus's max attempts it becomes a dead letter with reason.
func (b *Broker) Nack(topic Topic, p Puller, id uint64, delay time.Duration, reason string) error {
	return b.withHeld(topic, p, id, func(q *queue, s *pullerSlot, d *Delivery) {
		q.unhold(s, d)
		if reason == "" {
			reason = "nacked"
		}
		q.retry(d.handBack(), delay, reason) // as for an ack timeout (tick)
	})
}

func (b *Broker) withHeld(topic Topic, p Puller, id uint64, fn func(*queue, *pullerSlot, *Delivery)) error {
	q := b.queue(topic)
	if q == nil {
		return ErrUnknownID
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.pullers {
		if s.p != p {
			continue
		}
		for _, d := range s.held {
			if d.ID() == id {
				fn(q, s, d)
				q.dispatch()
				q.scheduleLocked()
				return nil
			}
		}
	}
	return ErrUnknownID
}

// queue returns the live queue for topic, or nil.
func (b *Broker) queue(topic Topic) *queue {
	b.queuesMu.Lock()
	defer b.queuesMu.Unlock()
	return b.queues[topic]
}
