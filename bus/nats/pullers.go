package nats

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// Each broker with pullers on a queue has one key in the puller bucket,
// "<queue key>.<node>", with how many and whether exclusive. The bucket's
// TTL makes the keys leases: a broker refreshes its own, and the keys of a
// broker that died expire. A new puller writes its key first and then
// reads the others', so of two brokers racing for a queue at least one
// sees the other.

// pullerEntry is one broker's key in the puller bucket.
type pullerEntry struct {
	Topic     broker.Topic `json:"topic"`
	Pullers   int          `json:"pullers"`
	Exclusive bool         `json:"exclusive,omitempty"`
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// putPullers writes this broker's key for q; local 0 deletes it.
func (p *Backplane) putPullers(q *remoteQueue, local int, exclusive bool) error {
	ctx, cancel := p.reqCtx()
	defer cancel()
	key := q.key + "." + p.node
	if local <= 0 {
		err := p.pullers.Delete(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
		return err
	}
	val, _ := json.Marshal(pullerEntry{Topic: q.topic, Pullers: local, Exclusive: exclusive})
	_, err := p.pullers.Put(ctx, key, val)
	return err
}

// otherPullers returns the other brokers' keys for queue key.
func (p *Backplane) otherPullers(key string) (map[string]pullerEntry, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	lister, err := p.pullers.ListKeysFiltered(ctx, key+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]pullerEntry)
	for k := range lister.Keys() {
		if strings.HasSuffix(k, "."+p.node) {
			continue
		}
		e, err := p.pullers.Get(ctx, k)
		if err != nil {
			continue // expired or deleted meanwhile
		}
		var pe pullerEntry
		if json.Unmarshal(e.Value(), &pe) == nil && pe.Pullers > 0 {
			out[k] = pe
		}
	}
	return out, nil
}

// Join registers one more local puller (broker.RemoteQueue).
func (q *remoteQueue) Join(opts broker.PullOptions, local int) error {
	p := q.p
	exclusive := opts.Exclusive || opts.Takeover
	p.mu.Lock()
	prevLocal, prevExclusive := q.local, q.exclusive
	p.mu.Unlock()
	if err := p.putPullers(q, local, exclusive); err != nil {
		return p.unavailable("register the puller", err)
	}
	others, err := p.otherPullers(q.key)
	if err != nil {
		p.putPullers(q, prevLocal, prevExclusive)
		return p.unavailable("look up the other pullers", err)
	}
	if opts.Takeover {
		if len(others) > 0 {
			ctx, cancel := p.reqCtx()
			for k := range others {
				p.pullers.Delete(ctx, k)
			}
			cancel()
			if err := p.nc.Publish(p.ctlPrefix+".evict."+q.key, []byte(p.node)); err != nil {
				p.log.Warn("cluster: failed to tell the other brokers of a takeover", "topic", q.topic, "err", err)
			}
		}
	} else {
		refuse := error(nil)
		for _, e := range others {
			switch {
			case e.Exclusive:
				refuse = broker.ErrExclusive
			case exclusive && refuse == nil:
				refuse = broker.ErrQueueBusy
			}
		}
		if refuse != nil {
			p.putPullers(q, prevLocal, prevExclusive)
			return refuse
		}
	}
	p.mu.Lock()
	q.local, q.exclusive = local, exclusive
	p.mu.Unlock()
	return nil
}

// Leave updates this broker's key after a puller left (broker.RemoteQueue).
func (q *remoteQueue) Leave(local int, exclusive bool) {
	p := q.p
	p.mu.Lock()
	q.local, q.exclusive = local, exclusive
	p.mu.Unlock()
	if err := p.putPullers(q, local, exclusive); err != nil {
		p.log.Debug("cluster: failed to update the pullers", "topic", q.topic, "err", err)
	}
}

// listenEvictions evicts this broker's pullers of a queue another broker
// took over.
func (p *Backplane) listenEvictions() error {
	_, err := p.nc.Subscribe(p.ctlPrefix+".evict.*", func(msg *nats.Msg) {
		if string(msg.Data) == p.node {
			return
		}
		key := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
		p.mu.Lock()
		q := p.queues[key]
		p.mu.Unlock()
		if q != nil {
			p.log.Info("cluster: queue taken over by another broker; evicting its pullers here", "topic", q.topic)
			q.feed.Evict("taken over")
		}
	})
	if err != nil {
		return p.unavailable("listen for takeovers", err)
	}
	return nil
}

// refreshPullers keeps this broker's puller keys alive.
func (p *Backplane) refreshPullers() {
	t := time.NewTicker(pullerLease / 3)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		type reg struct {
			q         *remoteQueue
			local     int
			exclusive bool
		}
		var regs []reg
		p.mu.Lock()
		for _, q := range p.queues {
			if q.local > 0 {
				regs = append(regs, reg{q, q.local, q.exclusive})
			}
		}
		p.mu.Unlock()
		for _, r := range regs {
			if err := p.putPullers(r.q, r.local, r.exclusive); err != nil {
				p.log.Debug("cluster: failed to refresh the pullers", "topic", r.q.topic, "err", err)
				continue
			}
			// A queue in use is not expired.
			p.mu.Lock()
			delete(p.touched, r.q.topic)
			p.mu.Unlock()
			p.useQueue(r.q.topic, r.q.ttl, false)
		}
	}
}
