package broker

import "time"

// AgentBackplane is the capability of a backplane that shares presence
// and request/reply between the brokers: each broker keeps its own
// subscriptions and announces them; requests reach the responders of every
// broker, and answers go back to the broker that sent the request.
type AgentBackplane interface {
	// StartAgents starts handing the other brokers' presence and requests
	// to feed.
	StartAgents(feed AgentFeed) error
	// Announce tells the other brokers a subscription here joined or left.
	// It is called in the order of the events, and must not block.
	Announce(e PresenceEvent)
	// SendRequest hands request id to the other brokers and returns how
	// many responders they gave it to. It returns once every broker known
	// to be alive answered, or within a bounded time.
	SendRequest(m *Message, id string, timeout time.Duration) (responders int, err error)
	// SendAnswer sends an answer to request id to the broker node that
	// sent it.
	SendAnswer(node, id string, a Answer) error
}

// AgentFeed takes what an AgentBackplane brings from the other brokers.
type AgentFeed interface {
	// PeerEvent: a subscription on another broker joined or left.
	PeerEvent(e PresenceEvent)
	// PeerSnapshot replaces what is known of node's subscriptions.
	PeerSnapshot(node string, ps []Presence)
	// PeerGone: node stopped answering; its subscriptions left.
	PeerGone(node string)
	// PeerCount returns how many subscriptions of node are known here: a
	// heartbeat that says otherwise shows events were lost.
	PeerCount(node string) int
	// LocalPresence returns this broker's own subscriptions, for a peer
	// that needs them all; announce is called under the same lock, so no
	// event is lost or doubled between the list and later events.
	LocalPresence(announce func([]Presence))
	// PeerRequest hands another broker's request to the responders here
	// and returns how many got it.
	PeerRequest(m *Message, id string, timeout time.Duration) int
	// PeerAnswer hands an answer from another broker to request id.
	PeerAnswer(id string, a Answer)
}

// agentFeed is the broker's side of an AgentBackplane.
type agentFeed struct{ b *Broker }

func (f agentFeed) PeerEvent(e PresenceEvent) {
	pr := &f.b.presence
	pr.mu.Lock()
	defer pr.mu.Unlock()
	node := pr.peers[e.Node]
	if e.Join {
		if node == nil {
			node = make(map[uint64]Presence)
			pr.peers[e.Node] = node
		}
		node[e.Conn] = e.Presence
	} else {
		if _, ok := node[e.Conn]; !ok {
			return
		}
		delete(node, e.Conn)
	}
	f.b.notifyLocked(e)
}

func (f agentFeed) PeerSnapshot(node string, ps []Presence) {
	pr := &f.b.presence
	pr.mu.Lock()
	defer pr.mu.Unlock()
	old := pr.peers[node]
	now := make(map[uint64]Presence, len(ps))
	for _, p := range ps {
		now[p.Conn] = p
		if _, ok := old[p.Conn]; !ok {
			f.b.notifyLocked(PresenceEvent{Join: true, Presence: p})
		}
	}
	for conn, p := range old {
		if _, ok := now[conn]; !ok {
			f.b.notifyLocked(PresenceEvent{Presence: p})
		}
	}
	pr.peers[node] = now
}

func (f agentFeed) PeerGone(node string) {
	pr := &f.b.presence
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, p := range pr.peers[node] {
		f.b.notifyLocked(PresenceEvent{Presence: p})
	}
	delete(pr.peers, node)
}

func (f agentFeed) PeerCount(node string) int {
	pr := &f.b.presence
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.peers[node])
}

func (f agentFeed) LocalPresence(announce func([]Presence)) {
	pr := &f.b.presence
	pr.mu.Lock()
	defer pr.mu.Unlock()
	ps := make([]Presence, 0, len(pr.present))
	for p := range pr.present {
		ps = append(ps, *p)
	}
	announce(ps)
}

func (f agentFeed) PeerRequest(m *Message, id string, timeout time.Duration) int {
	rq := &f.b.requests
	rq.mu.Lock()
	if len(rq.remote) >= f.b.opts.MaxPendingRequests {
		now := time.Now()
		for old, deadline := range rq.remote {
			if !now.Before(deadline) {
				delete(rq.remote, old)
			}
		}
	}
	if len(rq.remote) >= f.b.opts.MaxPendingRequests {
		rq.mu.Unlock()
		return 0 // as many as the broker's own: the requester hears of none here
	}
	if rq.remote == nil {
		rq.remote = make(map[string]time.Time)
	}
	rq.remote[id] = time.Now().Add(timeout)
	rq.mu.Unlock()
	return f.b.deliverRequest(m, id)
}

func (f agentFeed) PeerAnswer(id string, a Answer) {
	rq := &f.b.requests
	rq.mu.Lock()
	p := rq.pending[id]
	rq.mu.Unlock()
	if p == nil {
		rq.late.Add(1)
		return
	}
	p.add(a)
}
