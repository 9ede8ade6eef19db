package nats

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The sweeper, on every broker, deletes the queues nobody used for their
// TTL: no pullers registered and no push recorded. The bucket entry is
// deleted first, conditionally on its revision, so of several brokers
// sweeping at once exactly one deletes the queue (and logs it), and a push
// that recorded its use meanwhile keeps the queue alive. The messages are
// purged only up to the stream's last sequence read before, so a message
// pushed meanwhile is kept.

// sweepEvery bounds how often the queues are checked.
const (
	maxSweepEvery = 30 * time.Second
	minSweepEvery = 100 * time.Millisecond
)

func (p *Backplane) sweep() {
	wait := minSweepEvery
	for {
		p.sweepWait.Store(int64(wait))
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(wait):
		case <-p.sweepSoon:
		}
		shortest, err := p.sweepOnce()
		if err != nil {
			p.log.Debug("cluster: failed to sweep the queues", "err", err)
		}
		wait = min(max(shortest/4, minSweepEvery), maxSweepEvery)
	}
}

// sweepFor makes the sweeper look again soon when it waits too long for a
// queue of ttl this broker just used: it paced itself on the queues it saw.
func (p *Backplane) sweepFor(ttl time.Duration) {
	if ttl > 0 && ttl/4 < time.Duration(p.sweepWait.Load()) {
		select {
		case p.sweepSoon <- struct{}{}:
		default:
		}
	}
}

// sweepOnce expires what is due and returns the shortest TTL seen.
func (p *Backplane) sweepOnce() (time.Duration, error) {
	if p.Ready() != nil {
		return maxSweepEvery, nil
	}
	keys, err := p.queueKeys()
	if err != nil {
		return maxSweepEvery, err
	}
	shortest := maxSweepEvery * 4
	now := time.Now()
	for _, key := range keys {
		e, err := p.queueEntry(key)
		if err != nil {
			continue
		}
		var rec queueRecord
		if json.Unmarshal(e.Value(), &rec) != nil || rec.TTL <= 0 {
			continue
		}
		shortest = min(shortest, rec.TTL)
		if now.Sub(rec.Used) < rec.TTL {
			continue
		}
		if pullers, err := p.allPullers(key); err != nil || len(pullers) > 0 {
			continue
		}
		p.expire(key, rec, e.Revision())
	}
	return shortest, nil
}

// expire deletes the queue of key, unless it was used since revision.
func (p *Backplane) expire(key string, rec queueRecord, revision uint64) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.queueStream)
	if err != nil {
		return
	}
	last := st.CachedInfo().State.LastSeq
	if err := p.queueInfo.Delete(ctx, key, jetstream.LastRevision(revision)); err != nil {
		return // used meanwhile, or another broker expired it
	}
	p.mu.Lock()
	delete(p.touched, rec.Topic)
	p.mu.Unlock()
	if err := p.js.DeleteConsumer(ctx, p.queueStream, key); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.log.Warn("cluster: failed to delete an expired queue's consumer", "topic", rec.Topic, "err", err)
	}
	dropped := 0
	counts, _ := p.subjectCounts(p.queueStream, p.queuePrefix)
	dropped += int(counts[subjectOf(p.queuePrefix, rec.Topic)])
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subjectOf(p.queuePrefix, rec.Topic)), jetstream.WithPurgeSequence(last+1)); err != nil {
		p.log.Warn("cluster: failed to purge an expired queue", "topic", rec.Topic, "err", err)
	}
	if kv, err := p.js.Stream(ctx, "KV_"+p.stream+"_UNCOUNTED"); err == nil {
		kv.Purge(ctx, jetstream.WithPurgeSubject("$KV."+p.stream+"_UNCOUNTED."+key+".>"))
	}
	if dead, err := p.js.Stream(ctx, p.deadStream); err == nil {
		counts, _ := p.subjectCounts(p.deadStream, p.deadPrefix)
		dropped += int(counts[subjectOf(p.deadPrefix, rec.Topic)])
		dead.Purge(ctx, jetstream.WithPurgeSubject(subjectOf(p.deadPrefix, rec.Topic)))
	}
	p.log.Info("queue expired", "topic", rec.Topic, "ttl", rec.TTL, "dropped", dropped, "cluster", p.opts.Name)
}

// forgetTouches forgets the queues whose next use is due to be recorded
// anyway: those used no more, or expired (by whichever broker). Only
// entries whose time has not come hold back a touch, so the map keeps the
// queues this broker used in the last touchEvery.
func (p *Backplane) forgetTouches(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for topic, next := range p.touched {
		if !now.Before(next) {
			delete(p.touched, topic)
		}
	}
}
