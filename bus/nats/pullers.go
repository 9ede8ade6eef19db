package nats

import (
	"encoding/json"
	"errors"
	"fmt"
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
//
// A takeover deletes the other brokers' keys. Only the owner writes its
// key otherwise, each write conditional on the revision of its last one,
// so a broker learns from the bucket itself, not from a message it may
// miss, that its key was deleted (or expired while it was cut off): its
// pullers of the queue are then evicted, and join again as new ones. After
// losing NATS a broker checks its keys this way before it fetches again.

// pullerEntry is one broker's key in the puller bucket.
type pullerEntry struct {
	Topic     broker.Topic `json:"topic"`
	Pullers   int          `json:"pullers"`
	Exclusive bool         `json:"exclusive,omitempty"`
}

// errLeaseLost says this broker's key of a queue is no longer the one it
// wrote last: another broker took the queue over, or the key expired.
var errLeaseLost = errors.New("nats: this broker's pullers lost their registration")

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// revisionMismatch reports whether err is JetStream refusing a write
// conditional on a revision that is not the key's last.
func revisionMismatch(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// writePullers writes this broker's key for q and returns its revision;
// local 0 deletes it. With rev > 0 the write is conditional on the key's
// last revision being rev, and fails with errLeaseLost otherwise.
func (p *Backplane) writePullers(q *remoteQueue, rev uint64, local int, exclusive bool) (uint64, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	key := q.key + "." + p.node
	if local <= 0 {
		var opts []jetstream.KVDeleteOpt
		if rev > 0 {
			opts = append(opts, jetstream.LastRevision(rev))
		}
		err := p.pullers.Delete(ctx, key, opts...)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			err = nil
		case revisionMismatch(err):
			err = errLeaseLost
		}
		return 0, err
	}
	val, _ := json.Marshal(pullerEntry{Topic: q.topic, Pullers: local, Exclusive: exclusive})
	if rev == 0 {
		return p.pullers.Put(ctx, key, val)
	}
	rev, err := p.pullers.Update(ctx, key, val, rev)
	if revisionMismatch(err) {
		return 0, errLeaseLost
	}
	return rev, err
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

// errTakenOver refuses a puller that joins while the pullers already here
// are being evicted.
var errTakenOver = fmt.Errorf("%w: this broker's pullers of the queue were just taken over; try again", broker.ErrUnavailable)

// Join registers one more local puller (broker.RemoteQueue).
func (q *remoteQueue) Join(opts broker.PullOptions, local int) error {
	p := q.p
	exclusive := opts.Exclusive || opts.Takeover
	q.regMu.Lock()
	defer q.regMu.Unlock()
	if q.lost.Load() {
		return errTakenOver
	}
	p.mu.Lock()
	prevLocal, prevExclusive := q.local, q.exclusive
	p.mu.Unlock()
	rev, err := p.writePullers(q, q.rev, local, exclusive)
	if errors.Is(err, errLeaseLost) {
		q.loseLease()
		return errTakenOver
	}
	if err != nil {
		return p.unavailable("register the puller", err)
	}
	q.rev = rev
	others, err := p.otherPullers(q.key)
	if err != nil {
		q.rewrite(prevLocal, prevExclusive)
		return p.unavailable("look up the other pullers", err)
	}
	if opts.Takeover {
		if len(others) > 0 {
			ctx, cancel := p.reqCtx()
			for k := range others {
				p.pullers.Delete(ctx, k)
			}
			cancel()
			// Only a prompt: the brokers taken over learn it for sure
			// from their next write of their deleted keys.
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
			q.rewrite(prevLocal, prevExclusive)
			return refuse
		}
	}
	p.mu.Lock()
	q.local, q.exclusive = local, exclusive
	p.mu.Unlock()
	return nil
}

// rewrite puts back the registration a refused or failed join changed;
// q.regMu is held. Should it fail, the next renewal puts it right.
func (q *remoteQueue) rewrite(local int, exclusive bool) {
	rev, err := q.p.writePullers(q, q.rev, local, exclusive)
	switch {
	case errors.Is(err, errLeaseLost):
		q.loseLease()
	case err != nil:
		q.p.log.Debug("cluster: failed to restore the pullers", "topic", q.topic, "err", err)
	default:
		q.rev = rev
	}
}

// Leave updates this broker's key after a puller left (broker.RemoteQueue).
func (q *remoteQueue) Leave(local int, exclusive bool) {
	p := q.p
	q.regMu.Lock()
	defer q.regMu.Unlock()
	p.mu.Lock()
	q.local, q.exclusive = local, exclusive
	p.mu.Unlock()
	if q.lost.Load() {
		return
	}
	rev, err := p.writePullers(q, q.rev, local, exclusive)
	switch {
	case errors.Is(err, errLeaseLost):
		q.loseLease()
	case err != nil:
		p.log.Debug("cluster: failed to update the pullers", "topic", q.topic, "err", err)
	default:
		q.rev = rev
	}
}

// renew writes q's key again as it stands, conditionally on its last
// revision, and reports whether q may go on fetching.
func (q *remoteQueue) renew() bool {
	p := q.p
	q.regMu.Lock()
	defer q.regMu.Unlock()
	if q.lost.Load() {
		return false
	}
	p.mu.Lock()
	local, exclusive := q.local, q.exclusive
	p.mu.Unlock()
	if local <= 0 {
		return true
	}
	rev, err := p.writePullers(q, q.rev, local, exclusive)
	switch {
	case errors.Is(err, errLeaseLost):
		q.loseLease()
		return false
	case err != nil:
		p.log.Debug("cluster: failed to renew the pullers", "topic", q.topic, "err", err)
		return false
	}
	q.rev = rev
	return true
}

// loseLease marks q's pullers for eviction, which its fetcher carries out.
func (q *remoteQueue) loseLease() {
	q.lost.Store(true)
	q.wake()
}

// suspectAll makes every queue check its registration before it fetches
// again: this broker lost NATS, and with it perhaps a takeover's word.
func (p *Backplane) suspectAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.queues {
		q.suspect.Store(true)
	}
}

// listenEvictions makes this broker check its registration of a queue
// another broker took over.
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
			q.suspect.Store(true)
			q.wake()
		}
	})
	if err != nil {
		return p.unavailable("listen for takeovers", err)
	}
	return nil
}

// refreshPullers keeps this broker's puller keys alive, and forgets the
// queues it no longer uses.
func (p *Backplane) refreshPullers() {
	t := time.NewTicker(pullerLease / 3)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.forgetTouches(time.Now())
		var held []*remoteQueue
		p.mu.Lock()
		for _, q := range p.queues {
			if q.local > 0 {
				held = append(held, q)
			}
		}
		p.mu.Unlock()
		for _, q := range held {
			if !q.renew() {
				continue
			}
			// A queue in use is not expired.
			p.mu.Lock()
			delete(p.touched, q.topic)
			p.mu.Unlock()
			p.useQueue(q.topic, q.ttl, false)
		}
	}
}
