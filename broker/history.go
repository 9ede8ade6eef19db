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
	dropped uint64 // the highest sequence number evicted, 0 if none
}

func (r *ring) len() int { return len(r.msgs) - r.head }

// add appends m and evicts what the policy no longer keeps.
func (r *ring) add(m *Message, h History) {
	r.msgs = append(r.msgs, m)
	r.trim(h, m.Time)
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
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
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
		r = &ring{dropped: b.historyFrom}
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
// non-nil when part of the range is no longer kept.
func (b *Broker) SubscribeSince(topic Topic, r Receiver, since uint64) (backlog []*Message, gap *Gap, unsubscribe func()) {
	if b.bp != nil {
		return b.subscribeSinceCluster(topic, r, since)
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	unsubscribe = b.Subscribe(topic, r)
	last := b.seq
	if since >= last {
		return nil, nil, unsubscribe
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
	return backlog, gap, unsubscribe
}

func widen(g *Gap, from, to uint64) *Gap {
	if g == nil {
		return &Gap{From: from, To: to}
	}
	g.From = min(g.From, from)
	g.To = max(g.To, to)
	return g
}
