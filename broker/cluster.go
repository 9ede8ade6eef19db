package broker

import "sort"

// receive fans out a message the backplane's feed brings, in sequence
// order: to the subscribers of its topic and above, or to the peers of its
// bus room, skipping its sender unless that joined with echo.
func (b *Broker) receive(m *Message, kind Kind, from Origin) {
	var buf [8][]Receiver
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if m.Seq <= b.seq {
		return // already seen: the feed resumed from an earlier point
	}
	b.seq = m.Seq
	m.Epoch = b.epoch
	delivered := 0
	switch kind {
	case KindPublish:
		for _, level := range b.subs.Match(string(m.Topic), buf[:0]) {
			for _, r := range level {
				r.Deliver(m)
			}
			delivered += len(level)
		}
	case KindBus:
		own := from.Node == b.bp.Node()
		for _, p := range b.peers.Values(string(m.Topic)) {
			if !own || p.id != from.Peer || p.echo {
				p.r.Deliver(m)
				delivered++
			}
		}
	}
	b.count(b.policies().Lookup(m.Topic).Bus, m, delivered)
}

// subscribeFromCluster is SubscribeFrom on a backplane: r is attached
// first, then the backlog up to the last message the feed brought, or the
// point an interest feed resumed from (what r has not received), is read
// from the backplane. Live messages that reach r
// meanwhile come after the backlog, which the caller sends first.
//
// Only an epoch tells a position from another life here: one beyond the
// last sequence number this broker's feed brought may come from a broker
// whose feed is ahead.
func (b *Broker) subscribeFromCluster(topic Topic, r Receiver, pos Position) (backlog []*Message, gap *Gap, unsubscribe func()) {
	var last uint64
	unsubscribe = b.want(KindPublish, topic, func(from uint64) {
		b.pubMu.Lock()
		b.subs.Insert(string(topic), r)
		last = max(b.seq, from)
		b.pubMu.Unlock()
	}, func() { b.subs.Remove(string(topic), r) })
	if pos.Epoch != "" && pos.Epoch != b.epoch {
		backlog, gap = b.replayCluster(topic, 0, last)
		return backlog, resetGap(gap, b.epoch), unsubscribe
	}
	backlog, gap = b.replayCluster(topic, pos.Seq, last)
	return backlog, gap, unsubscribe
}

// replayCluster returns the kept messages under topic with sequence
// numbers in (since, last], and the gap in them.
func (b *Broker) replayCluster(topic Topic, since, last uint64) (backlog []*Message, gap *Gap) {
	if since >= last {
		return nil, nil
	}
	own := b.policies().Lookup(topic)
	if historyOf(own) == (History{}) {
		// Nothing is kept for topic itself: all of the range may be missed.
		return nil, &Gap{From: since + 1, To: last}
	}
	now := b.opts.Now()
	first, err := b.bp.Replay(topic, since, last, func(m *Message) {
		m.Epoch = b.epoch
		backlog = append(backlog, m)
	})
	if err != nil {
		b.opts.Logger.Warn("cluster: failed to replay", "topic", topic, "since", since, "err", err)
		return nil, &Gap{From: since + 1, To: last}
	}
	if first > since+1 {
		gap = widen(gap, since+1, first-1)
	}
	// The bus settings bound what is replayed: per bus, the newest
	// History.Messages, none older than History.Age.
	kept := make(map[Topic]int)
	out := make([]*Message, 0, len(backlog))
	for i := len(backlog) - 1; i >= 0; i-- {
		m := backlog[i]
		pol := b.policies().Lookup(m.Topic)
		h := historyOf(pol)
		if h == (History{}) {
			continue // a bus below topic that keeps nothing
		}
		if h.Messages > 0 && kept[pol.Bus] >= h.Messages || h.Age > 0 && now.Sub(m.Time) > h.Age {
			gap = widen(gap, since+1, m.Seq)
			continue
		}
		kept[pol.Bus]++
		out = append(out, m)
	}
	backlog = out
	sort.Slice(backlog, func(i, j int) bool { return backlog[i].Seq < backlog[j].Seq })
	return backlog, gap
}

// PublishAsync is Publish for a caller that need not wait for the message
// to be stored: on a backplane that can, it returns at once and done gets
// Publish's result later, on another goroutine; otherwise done is called
// before PublishAsync returns. Messages from one goroutine keep their
// order. A connection publishing through a cluster so keeps several
// messages in flight instead of one round trip each.
func (b *Broker) PublishAsync(m *Message, done func(error)) {
	if b.abp == nil {
		done(b.Publish(m))
		return
	}
	b.abp.PublishAsync(m, KindPublish, Origin{Node: b.bp.Node()}, done)
}

// SendBusAsync is SendBus as PublishAsync is Publish.
func (b *Broker) SendBusAsync(m *Message, from Receiver, done func(error)) {
	if b.abp == nil {
		done(b.SendBus(m, from))
		return
	}
	b.abp.PublishAsync(m, KindBus, b.origin(m.Topic, from), done)
}

// origin returns the Origin of a bus message from sender on topic.
func (b *Broker) origin(topic Topic, from Receiver) Origin {
	origin := Origin{Node: b.bp.Node()}
	if from != nil {
		for _, p := range b.peers.Values(string(topic)) {
			if p.r == from {
				origin.Peer = p.id
				break
			}
		}
	}
	return origin
}
