package broker

import (
	"sort"
	"time"
)

// ring holds one bus's retained messages for replay, in sequence order.
// It is guarded by Broker.pubMu.
type ring struct {
	msgs    []*Message // from head
	head    int
	dropped uint64     // the highest sequence number evicted, 0 if none
	mem     *memBudget // what the ring holds is charged to it
}

func (r *ring) len() int { return len(r.msgs) - r.head }

// add appends m and evicts what the policy no longer keeps.
func (r *ring) add(m *Message, h History) {
	r.keep(m)
	r.trim(h, m.Time)
}

// keep appends m, charging it to the budget: history is bounded by its
// count and age, and what it holds leaves less room for queues.
func (r *ring) keep(m *Message) {
	r.msgs = append(r.msgs, m)
	r.mem.charge(heldSize(m))
}

// trim evicts messages beyond h's count, or older than h's age at now.
func (r *ring) trim(h History, now time.Time) {
	for r.len() > 0 {
		oldest := r.msgs[r.head]
		tooMany := h.Messages > 0 && r.len() > h.Messages
		tooOld := h.Age > 0 && now.Sub(oldest.Time) > h.Age
		if !tooMany && !tooOld {
			break
		}
		r.dropped = oldest.Seq
		r.mem.release(heldSize(oldest))
		r.msgs[r.head] = nil
		r.head++
	}
	if r.head > 64 && r.head > len(r.msgs)/2 {
		n := copy(r.msgs, r.msgs[r.head:])
		clear(r.msgs[n:])
		r.msgs, r.head = r.msgs[:n], 0
	}
}

// after appends to dst the retained messages with Seq > since that lie
// under topic.
func (r *ring) after(since uint64, topic Topic, dst []*Message) []*Message {
	live := r.msgs[r.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].Seq > since })
	for _, m := range live[i:] {
		if m.Topic.Under(topic) {
			dst = append(dst, m)
		}
	}
	return dst
}

// Gap is a range of sequence numbers a subscriber may have missed: the
// messages in it are no longer kept.
//
// A gap with Reset set says the subscriber's position is from another
// life of the broker's sequence numbers (another epoch: a restart without
// a store, or a position beyond the last number given out). What follows
// is everything kept from the start of Epoch; From and To are what of it
// is no longer kept, both 0 when nothing.
type Gap struct {
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Reset bool   `json:"reset,omitempty"`
	Epoch string `json:"epoch,omitempty"` // the broker's, with Reset
}

// historyOf returns the policy history of a bus, with the durable default.
func historyOf(p *Policy) History {
	h := p.History
	if p.Durable && h.Messages == 0 && h.Age == 0 {
		h = DefaultDurableHistory
	}
	return h
}

// DefaultDurableHistory is what a durable bus keeps when its policy names
// no history.
var DefaultDurableHistory = History{Messages: 10000, Age: 24 * time.Hour}

// record keeps m in its bus's history; pubMu is held.
func (b *Broker) record(pol *Policy, m *Message) {
	h := historyOf(pol)
	if h.Messages == 0 && h.Age == 0 {
		return
	}
	r := b.rings[pol.Bus]
	if r == nil {
		// What came before the ring under this bus was not kept.
		r = &ring{dropped: b.historyFrom, mem: &b.mem}
		b.rings[pol.Bus] = r
	}
	before := r.dropped
	r.add(m, h)
	if pol.Durable && b.opts.Store != nil && r.dropped != before {
		b.trimPending[pol.Bus] = r.dropped
	}
}

// SubscribeSince subscribes r to topic like Subscribe, and returns the
// retained messages under topic with Seq > since, up to the moment r was
// attached: r receives everything after them live, with no gap and no
// duplicate. The caller sends the backlog before what r receives. gap is
// non-nil when part of the range is no longer kept, or when since cannot
// be from this epoch (see SubscribeFrom).
func (b *Broker) SubscribeSince(topic Topic, r Receiver, since uint64) (backlog []*Message, gap *Gap, unsubscribe func()) {
	return b.SubscribeFrom(topic, r, Position{Seq: since})
}

// SubscribeFrom is SubscribeSince from a position. A position from
// another epoch, or beyond the last sequence number given out (a client
// that does not say its epoch), cannot be from this life of the broker's
// sequence numbers: the backlog is then everything kept, after a gap with
// Reset set, rather than what happens to come after a number that means
// something else now.
func (b *Broker) SubscribeFrom(topic Topic, r Receiver, pos Position) (backlog []*Message, gap *Gap, unsubscribe func()) {
	if b.bp != nil {
		return b.subscribeFromCluster(topic, r, pos)
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	unsubscribe = b.Subscribe(topic, r)
	if pos.Epoch != b.epoch && pos.Epoch != "" || pos.Seq > b.seq {
		backlog, gap = b.backlogLocked(topic, 0)
		return backlog, resetGap(gap, b.epoch), unsubscribe
	}
	backlog, gap = b.backlogLocked(topic, pos.Seq)
	return backlog, gap, unsubscribe
}

// resetGap turns gap, what of this epoch is no longer kept, into the
// notice of a reset.
func resetGap(gap *Gap, epoch string) *Gap {
	if gap == nil {
		gap = &Gap{}
	}
	gap.Reset, gap.Epoch = true, epoch
	return gap
}

// backlogLocked returns the retained messages under topic with Seq >
// since, and the gap in them; pubMu is held.
func (b *Broker) backlogLocked(topic Topic, since uint64) (backlog []*Message, gap *Gap) {
	last := b.seq
	if since >= last {
		return nil, nil
	}
	now := b.opts.Now()
	own := b.policies().Lookup(topic)
	ownKept := historyOf(own) != History{}
	for bus, ring := range b.rings {
		if !topic.Under(bus) && !bus.Under(topic) {
			continue
		}
		if pol := b.policies().Lookup(bus); pol.Bus == bus {
			ring.trim(historyOf(pol), now)
		}
		backlog = ring.after(since, topic, backlog)
		if ring.dropped > since {
			gap = widen(gap, since+1, ring.dropped)
		}
	}
	switch {
	case !ownKept:
		// Nothing is kept for topic itself: all of the range may be missed.
		gap = widen(gap, since+1, last)
	case b.rings[own.Bus] == nil && b.historyFrom > since:
		gap = widen(gap, since+1, b.historyFrom)
	}
	sort.Slice(backlog, func(i, j int) bool { return backlog[i].Seq < backlog[j].Seq })
	return backlog, gap
}

func widen(g *Gap, from, to uint64) *Gap {
	if g == nil {
		return &Gap{From: from, To: to}
	}
	g.From = min(g.From, from)
	g.To = max(g.To, to)
	return g
}
