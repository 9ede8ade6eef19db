package broker

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mercury-broker/mercury/broker/trie"
)

// Presence is one subscription, as GET /presence lists it and as join and
// leave events carry it.
type Presence struct {
	Topic  Topic
	User   string // the credential's subject or API key name; "" anonymous
	Since  time.Time
	Node   string // the broker it is connected to; "" on a single broker
	Conn   uint64 // the connection's id on its broker
	Remote string // the client's address
}

// PresenceEvent is a subscription that joined or left.
type PresenceEvent struct {
	Join bool // false: it left
	Presence
}

// PresenceWatcher takes the join and leave events of the subscriptions at
// or below the topic it watches. PresenceEvent must not block, like
// Receiver.Deliver.
type PresenceWatcher interface {
	PresenceEvent(e PresenceEvent)
}

// presence holds the subscriptions that announced themselves and the
// watchers of their comings and goings.
type presence struct {
	mu       sync.Mutex
	present  map[*Presence]struct{}         // this broker's
	peers    map[string]map[uint64]Presence // other brokers', by node and connection
	watchers trie.Tree[PresenceWatcher]
}

// Join announces a subscription: watchers at or above its topic see it
// join, and Present lists it, until the returned function is called (the
// watchers then see it leave).
func (b *Broker) Join(p Presence) (leave func()) {
	if b.bp != nil && p.Node == "" {
		p.Node = b.bp.Node()
	}
	entry := &p
	b.presence.mu.Lock()
	if b.presence.present == nil {
		b.presence.present = make(map[*Presence]struct{})
	}
	b.presence.present[entry] = struct{}{}
	b.notifyLocked(PresenceEvent{Join: true, Presence: p})
	if b.agbp != nil {
		b.agbp.Announce(PresenceEvent{Join: true, Presence: p})
	}
	b.presence.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.presence.mu.Lock()
			delete(b.presence.present, entry)
			b.notifyLocked(PresenceEvent{Presence: p})
			if b.agbp != nil {
				b.agbp.Announce(PresenceEvent{Presence: p})
			}
			b.presence.mu.Unlock()
		})
	}
}

// notifyLocked hands e to the watchers at or above its topic; the
// presence lock is held, so every watcher sees events in one order.
func (b *Broker) notifyLocked(e PresenceEvent) {
	var buf [8][]PresenceWatcher
	for _, level := range b.presence.watchers.Match(string(e.Topic), buf[:0]) {
		for _, w := range level {
			w.PresenceEvent(e)
		}
	}
}

// WatchPresence makes w receive the join and leave events of the
// subscriptions at or below topic, until the returned function is called.
func (b *Broker) WatchPresence(topic Topic, w PresenceWatcher) (stop func()) {
	b.presence.mu.Lock()
	b.presence.watchers.Insert(string(topic), w)
	b.presence.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.presence.mu.Lock()
			b.presence.watchers.Remove(string(topic), w)
			b.presence.mu.Unlock()
		})
	}
}

// Present returns the subscriptions at or below topic, oldest first.
func (b *Broker) Present(topic Topic) []Presence {
	b.presence.mu.Lock()
	var ps []Presence
	for p := range b.presence.present {
		if p.Topic.Under(topic) {
			ps = append(ps, *p)
		}
	}
	for _, node := range b.presence.peers {
		for _, p := range node {
			if p.Topic.Under(topic) {
				ps = append(ps, p)
			}
		}
	}
	b.presence.mu.Unlock()
	slices.SortFunc(ps, func(a, b Presence) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(a.Conn, b.Conn)
	})
	return ps
}
