package web

import (
	"sync"

	"github.com/mercury-broker/mercury/broker"
)

// replyIDs are the ids of the requests a connection received and has not
// answered: only they may be answered from it. The set stays bounded: once
// it doubles, the ids of requests that ended are dropped, so it holds at
// most twice the broker's pending requests (Options.MaxPendingRequests).
type replyIDs struct {
	mu      sync.Mutex
	ids     map[string]struct{}
	pruneAt int
}

const minReplyPrune = 64

// add records id; b tells which requests still wait.
func (r *replyIDs) add(id string, b *broker.Broker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = make(map[string]struct{})
	}
	if len(r.ids) >= max(r.pruneAt, minReplyPrune) {
		for old := range r.ids {
			if !b.Waiting(old) {
				delete(r.ids, old)
			}
		}
		r.pruneAt = 2 * len(r.ids)
	}
	r.ids[id] = struct{}{}
}

// take removes id and reports whether it was there.
func (r *replyIDs) take(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	delete(r.ids, id)
	return ok
}

// len returns how many ids are held.
func (r *replyIDs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}
