package nats

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mercury-broker/mercury/broker"
)

// Presence and request/reply between the brokers (broker.AgentBackplane),
// on plain NATS subjects under <name>.ag: nothing here is stored.
//
//	.ev           a subscription joined or left (JSON broker.PresenceEvent)
//	.hb           a broker's heartbeat, with its subscription count; one
//	              not heard for three is gone
//	.bye          a broker that closes: its subscriptions left
//	.snap.<node>  every subscription of a broker, for node, which does not
//	              know it yet (and, when asked, answers with its own)
//	.req          a request; each broker answers with its responder count
//	.ans.<node>   an answer, for the broker that sent the request
//
// One subscription takes them all, so a broker's messages are handled in
// the order it sent them: a snapshot and the events around it agree.

// DefaultHeartbeat is the default of Options.Heartbeat.
const DefaultHeartbeat = 2 * time.Second

// heartbeatsMissed is how many heartbeats a broker may miss before its
// peers take its subscriptions as gone.
const heartbeatsMissed = 3

// NATS headers of the agents' messages, beyond hdrNode, hdrID and
// hdrTime (publish.go).
const (
	hdrTopic   = "Mercury-Topic"
	hdrKind    = "Mercury-Kind" // json (absent), text or binary
	hdrUser    = "Mercury-User"
	hdrTimeout = "Mercury-Timeout"
	hdrAnswer  = "Mercury-Answer-Snapshot" // "1": send yours back
)

// agents is the backplane's share of presence and requests.
type agents struct {
	base string
	feed broker.AgentFeed

	inbox string // where responder counts come back, one subject per request below it

	mu        sync.Mutex
	peers     map[string]time.Time // node → when last heard (monotonic)
	counts    map[string]chan int  // requests waiting for responder counts, by reply token
	nextToken uint64
}

// agentsOf returns the backplane's agents state, made once.
func (p *Backplane) agentsOf() *agents {
	p.agentsOnce.Do(func() {
		p.ag = &agents{base: p.opts.Name + ".ag", inbox: p.nc.NewInbox(),
			peers: make(map[string]time.Time), counts: make(map[string]chan int)}
	})
	return p.ag
}

// StartAgents starts taking the other brokers' presence and requests
// (broker.AgentBackplane).
func (p *Backplane) StartAgents(feed broker.AgentFeed) error {
	ag := p.agentsOf()
	ag.feed = feed
	if _, err := p.nc.Subscribe(ag.base+".>", p.agentMsg); err != nil {
		return fmt.Errorf("failed to subscribe to the cluster's presence: %w", err)
	}
	if _, err := p.nc.Subscribe(ag.inbox+".*", ag.countMsg); err != nil {
		return fmt.Errorf("failed to subscribe to the cluster's requests: %w", err)
	}
	p.heartbeat()
	p.wg.Go(p.heartbeats)
	return nil
}

// heartbeats beats, and forgets the brokers not heard for a while, until
// the backplane closes; then it says goodbye.
func (p *Backplane) heartbeats() {
	every := p.opts.Heartbeat
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			p.agentPublish(p.ag.base+".bye", nil, nil)
			return
		case <-t.C:
			p.heartbeat()
			p.forgetSilent(time.Now(), heartbeatsMissed*every)
		}
	}
}

// heartbeat says this broker is alive, and how many subscriptions it has:
// a peer that counts otherwise lost events (NATS was cut for a moment),
// and asks for them all.
func (p *Backplane) heartbeat() {
	p.ag.feed.LocalPresence(func(ps []broker.Presence) {
		p.agentPublish(p.ag.base+".hb", nil, strconv.AppendInt(nil, int64(len(ps)), 10))
	})
}

// forgetSilent reports as gone the brokers not heard within limit.
func (p *Backplane) forgetSilent(now time.Time, limit time.Duration) {
	ag := p.ag
	var gone []string
	ag.mu.Lock()
	for node, heard := range ag.peers {
		if now.Sub(heard) > limit {
			gone = append(gone, node)
			delete(ag.peers, node)
		}
	}
	ag.mu.Unlock()
	for _, node := range gone {
		p.log.Warn("cluster: a broker went silent; its subscriptions are gone", "node", node)
		ag.feed.PeerGone(node)
	}
}

// agentPublish publishes on subject with this broker's node in a header.
// A message that cannot go now is not retried: heartbeats and snapshots
// make up for it.
func (p *Backplane) agentPublish(subject string, h nats.Header, body []byte) {
	m := nats.NewMsg(subject)
	if h != nil {
		m.Header = h
	}
	m.Header.Set(hdrNode, p.node)
	m.Data = body
	switch err := p.nc.PublishMsg(m); {
	case errors.Is(err, nats.ErrMaxPayload):
		// A snapshot of more subscriptions than one NATS message holds:
		// the peers miss them until max_payload is raised.
		p.log.Error("cluster: presence too big for one NATS message; raise the NATS server's max_payload",
			"subject", subject, "bytes", len(body), "max", p.nc.MaxPayload())
	case err != nil:
		p.log.Debug("cluster: failed to publish", "subject", subject, "err", err)
	}
}

// Announce tells the other brokers a subscription here joined or left
// (broker.AgentBackplane).
func (p *Backplane) Announce(e broker.PresenceEvent) {
	b, _ := json.Marshal(e)
	p.agentPublish(p.ag.base+".ev", nil, b)
}

// sendSnapshot sends this broker's subscriptions to node; ask asks for
// node's in return.
func (p *Backplane) sendSnapshot(node string, ask bool) {
	p.ag.feed.LocalPresence(func(ps []broker.Presence) {
		b, _ := json.Marshal(ps)
		h := nats.Header{}
		if ask {
			h.Set(hdrAnswer, "1")
		}
		p.agentPublish(p.ag.base+".snap."+node, h, b)
	})
}

// agentMsg handles one message of the other brokers.
func (p *Backplane) agentMsg(m *nats.Msg) {
	ag := p.ag
	from := m.Header.Get(hdrNode)
	if from == "" || from == p.node {
		return
	}
	kind := strings.TrimPrefix(m.Subject, ag.base+".")
	if kind == "bye" {
		ag.mu.Lock()
		delete(ag.peers, from)
		ag.mu.Unlock()
		ag.feed.PeerGone(from)
		return
	}
	ag.mu.Lock()
	_, known := ag.peers[from]
	ag.peers[from] = time.Now()
	ag.mu.Unlock()
	if !known {
		// A broker new to us: it gets ours, and we get its own.
		p.sendSnapshot(from, true)
	}
	switch {
	case kind == "hb":
		if n, err := strconv.Atoi(string(m.Data)); err == nil && known && n != ag.feed.PeerCount(from) {
			p.sendSnapshot(from, true)
		}
	case kind == "ev":
		var e broker.PresenceEvent
		if json.Unmarshal(m.Data, &e) == nil {
			ag.feed.PeerEvent(e)
		}
	case kind == "snap."+p.node:
		var ps []broker.Presence
		if json.Unmarshal(m.Data, &ps) == nil {
			ag.feed.PeerSnapshot(from, ps)
		}
		if m.Header.Get(hdrAnswer) != "" && known {
			p.sendSnapshot(from, false)
		}
	case kind == "req":
		p.peerRequest(m)
	case kind == "ans."+p.node:
		a := broker.Answer{User: m.Header.Get(hdrUser), Topic: broker.Topic(m.Header.Get(hdrTopic)), Payload: m.Data}
		switch m.Header.Get(hdrKind) {
		case "text":
			a.Text = true
		case "binary":
			a.Binary = true
		}
		ag.feed.PeerAnswer(m.Header.Get(hdrID), a)
	}
}

// peerRequest hands another broker's request to the responders here, and
// tells it how many got it.
func (p *Backplane) peerRequest(nm *nats.Msg) {
	t, err := time.Parse(time.RFC3339Nano, nm.Header.Get(hdrTime))
	timeout, err2 := time.ParseDuration(nm.Header.Get(hdrTimeout))
	if err != nil || err2 != nil {
		return
	}
	m := &broker.Message{Topic: broker.Topic(nm.Header.Get(hdrTopic)), Time: t, Binary: nm.Header.Get(hdrKind) == "binary", Payload: nm.Data}
	n := p.ag.feed.PeerRequest(m, nm.Header.Get(hdrID), timeout)
	if nm.Reply != "" {
		nm.Respond([]byte(strconv.Itoa(n)))
	}
}

// SendRequest hands request id to the other brokers and returns how many
// responders they gave it to (broker.AgentBackplane). It waits for every
// broker heard from lately, at most the backplane's timeout or the
// request's, whichever is shorter.
func (p *Backplane) SendRequest(m *broker.Message, id string, timeout time.Duration) (int, error) {
	ag := p.agentsOf()
	ag.mu.Lock()
	peers := len(ag.peers)
	ag.mu.Unlock()
	if peers == 0 {
		return 0, nil
	}
	nm := nats.NewMsg(ag.base + ".req")
	nm.Header.Set(hdrNode, p.node)
	nm.Header.Set(hdrID, id)
	nm.Header.Set(hdrTopic, string(m.Topic))
	nm.Header.Set(hdrTime, m.Time.UTC().Format(time.RFC3339Nano))
	nm.Header.Set(hdrTimeout, timeout.String())
	if m.Binary {
		nm.Header.Set(hdrKind, "binary")
	}
	nm.Data = m.Payload
	counts := make(chan int, peers)
	token := ag.await(counts)
	defer ag.done(token)
	nm.Reply = ag.inbox + "." + token
	if err := p.nc.PublishMsg(nm); err != nil {
		return 0, p.unavailable("send a request", err)
	}
	t := time.NewTimer(min(timeout, p.opts.Timeout))
	defer t.Stop()
	total := 0
	for range peers {
		select {
		case n := <-counts:
			total += n
		case <-t.C:
			return total, nil // a broker that died meanwhile: its responders are gone too
		}
	}
	return total, nil
}

// await registers counts for the answers to one request's reply subject,
// made once: a subscription of its own per request would cost a round trip
// through the NATS cluster first.
func (ag *agents) await(counts chan int) string {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	ag.nextToken++
	token := strconv.FormatUint(ag.nextToken, 36)
	ag.counts[token] = counts
	return token
}

func (ag *agents) done(token string) {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	delete(ag.counts, token)
}

// countMsg takes a broker's responder count for a request sent here.
func (ag *agents) countMsg(m *nats.Msg) {
	token := strings.TrimPrefix(m.Subject, ag.inbox+".")
	n, err := strconv.Atoi(string(m.Data))
	ag.mu.Lock()
	counts := ag.counts[token]
	ag.mu.Unlock()
	if counts == nil || err != nil {
		return
	}
	select {
	case counts <- n:
	default: // more answers than brokers known when it was sent
	}
}

// SendAnswer sends an answer to the broker node that sent request id
// (broker.AgentBackplane).
func (p *Backplane) SendAnswer(node, id string, a broker.Answer) error {
	h := nats.Header{}
	h.Set(hdrID, id)
	h.Set(hdrUser, a.User)
	h.Set(hdrTopic, string(a.Topic))
	switch {
	case a.Binary:
		h.Set(hdrKind, "binary")
	case a.Text:
		h.Set(hdrKind, "text")
	}
	m := nats.NewMsg(p.ag.base + ".ans." + node)
	m.Header = h
	m.Header.Set(hdrNode, p.node)
	m.Data = a.Payload
	if err := p.nc.PublishMsg(m); err != nil {
		return p.unavailable("send an answer", err)
	}
	return nil
}

var _ broker.AgentBackplane = (*Backplane)(nil)
