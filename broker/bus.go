package broker

// busPeer is one connection on a bus topic.
type busPeer struct {
	r    Receiver
	echo bool   // also receives what it sends itself
	id   uint64 // numbers the peer in a backplane's Origin
}

// JoinBus makes r a peer of the bus room on exactly topic (bus rooms are
// not hierarchical) until the returned function is called. With echo, r
// also receives the frames it sends.
func (b *Broker) JoinBus(topic Topic, r Receiver, echo bool) (leave func()) {
	p := &busPeer{r: r, echo: echo, id: b.peerIDs.Add(1)}
	return b.want(KindBus, topic, func(uint64) { b.peers.Insert(string(topic), p) },
		func() { b.peers.Remove(string(topic), p) })
}

// SendBus accepts m on the bus namespace and hands it to every peer on
// exactly m.Topic. from is the sending peer, which gets m only if it joined
// with echo; a nil from (an HTTP POST) reaches every peer.
func (b *Broker) SendBus(m *Message, from Receiver) error {
	if b.bp != nil {
		// Handed to the peers when the backplane's feed brings it back.
		return b.bp.Publish(m, KindBus, b.origin(m.Topic, from))
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if err := b.stamp(m); err != nil {
		return err
	}
	delivered := 0
	for _, p := range b.peers.Values(string(m.Topic)) {
		if p.r != from || p.echo {
			p.r.Deliver(m)
			delivered++
		}
	}
	b.count(b.policies().Lookup(m.Topic).Bus, m, delivered)
	return nil
}

// BusPeers returns the number of bus peers and of trie nodes holding them.
func (b *Broker) BusPeers() (peers, nodes int) {
	return b.peers.Len(), b.peers.Nodes()
}
