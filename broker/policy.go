package broker

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// A bus is a topic prefix with a policy, declared in the config file. The
// longest matching prefix wins; a topic under no bus gets the zero Policy.

// Policy is the broker's part of a bus's settings. The zero value is a
// topic under no bus: no history, not durable, default queue settings.
type Policy struct {
	Bus     Topic   // the prefix; "" for a topic under no bus
	History History // what is kept for replay
	Durable bool    // stored on disk, fsynced before a publisher is told ok
	Queue   QueuePolicy
}

// History bounds what a bus keeps for replay: the newest Messages, none
// older than Age. Zero values keep nothing (no replay).
type History struct {
	Messages int
	Age      time.Duration
}

// QueuePolicy configures the push/pull queues under a bus. Zero values
// mean the defaults.
type QueuePolicy struct {
	Limit       int           // messages waiting; default Options.QueueLimit
	MaxBytes    int64         // bytes waiting (payload + a small overhead each); default DefaultQueueMaxBytes
	MaxAttempts int           // deliveries before a message is dead; default 5
	AckTimeout  time.Duration // before an unacked message is redelivered; default 30s
	TTL         time.Duration // unused queue lifetime; default 48h
}

// Policies finds the bus of a topic. It is immutable: a reload builds a
// new one.
type Policies struct {
	byBus map[Topic]*Policy
}

// NewPolicies indexes ps by bus. Two policies for the same bus are an
// error.
func NewPolicies(ps []Policy) (*Policies, error) {
	p := &Policies{byBus: make(map[Topic]*Policy, len(ps))}
	for i := range ps {
		pol := ps[i]
		if _, err := ParseTopic(string(pol.Bus)); err != nil || pol.Bus == "" {
			return nil, fmt.Errorf("bus %q: %w", pol.Bus, err)
		}
		if _, dup := p.byBus[pol.Bus]; dup {
			return nil, fmt.Errorf("bus %q is declared twice", pol.Bus)
		}
		p.byBus[pol.Bus] = &pol
	}
	return p, nil
}

// Lookup returns the policy of the bus t lies under, the longest matching
// prefix by whole segments, or the zero Policy. It does not allocate.
func (p *Policies) Lookup(t Topic) *Policy {
	if p != nil && len(p.byBus) > 0 {
		for prefix := t; prefix != ""; {
			if pol, ok := p.byBus[prefix]; ok {
				return pol
			}
			i := strings.LastIndexByte(string(prefix), '/')
			if i <= 0 {
				break
			}
			prefix = prefix[:i]
		}
	}
	return &noBus
}

var noBus Policy

// All returns every policy, ordered by bus.
func (p *Policies) All() []Policy {
	if p == nil {
		return nil
	}
	out := make([]Policy, 0, len(p.byBus))
	for _, pol := range p.byBus {
		out = append(out, *pol)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bus < out[j].Bus })
	return out
}
