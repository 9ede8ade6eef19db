package nats

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// QueueExists reports whether topic's queue is in the queue bucket
// (broker.QueueBackplane).
func (p *Backplane) QueueExists(topic broker.Topic) (bool, error) {
	_, err := p.queueRecord(topic)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, p.unavailable("look the queue up", err)
	}
	return true, nil
}

func (p *Backplane) queueRecord(topic broker.Topic) (jetstream.KeyValueEntry, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	return p.queueInfo.Get(ctx, queueKey(topic))
}

// subjectCounts returns the messages per subject of a stream under prefix.
func (p *Backplane) subjectCounts(stream, prefix string) (map[string]uint64, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+".>"))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// QueueStats returns every queue of the cluster (broker.QueueBackplane).
func (p *Backplane) QueueStats() ([]broker.QueueStats, error) {
	waiting, err := p.subjectCounts(p.queueStream, p.queuePrefix)
	if err != nil {
		return nil, p.unavailable("count the queued messages", err)
	}
	dead, err := p.subjectCounts(p.deadStream, p.deadPrefix)
	if err != nil {
		return nil, p.unavailable("count the dead letters", err)
	}
	keys, err := p.queueKeys()
	if err != nil {
		return nil, p.unavailable("list the queues", err)
	}
	stats := []broker.QueueStats{}
	for _, key := range keys {
		e, err := p.queueEntry(key)
		if err != nil {
			continue
		}
		var rec queueRecord
		if json.Unmarshal(e.Value(), &rec) != nil {
			continue
		}
		st := broker.QueueStats{Topic: rec.Topic, Durable: true, LastUsed: rec.Used, TTL: broker.Duration(rec.TTL),
			Dead: int(dead[subjectOf(p.deadPrefix, rec.Topic)])}
		stored := int(waiting[subjectOf(p.queuePrefix, rec.Topic)])
		var ci jetstream.Consumer
		if err := p.request(func(ctx context.Context) (err error) {
			ci, err = p.js.Consumer(ctx, p.queueStream, key)
			return err
		}); err == nil {
			st.InFlight = ci.CachedInfo().NumAckPending
		}
		st.Waiting = max(stored-st.InFlight, 0)
		if pullers, err := p.allPullers(key); err == nil {
			for _, pe := range pullers {
				st.Pullers += pe.Pullers
				st.Exclusive = st.Exclusive || pe.Exclusive
			}
		}
		stats = append(stats, st)
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Topic < stats[j].Topic })
	return stats, nil
}

// queueKeys lists the queue bucket's keys. The listing has a deadline of
// its own, apart from the requests made for each queue afterwards, which
// would otherwise end it early with the queues not yet listed.
func (p *Backplane) queueKeys() ([]string, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	lister, err := p.queueInfo.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the listing was cut short
	}
	return keys, nil
}

// queueEntry reads key's entry in the queue bucket.
func (p *Backplane) queueEntry(key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	return p.queueInfo.Get(ctx, key)
}

// allPullers returns every broker's key for queue key, this one's too.
func (p *Backplane) allPullers(key string) (map[string]pullerEntry, error) {
	others, err := p.otherPullers(key)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if q := p.queues[key]; q != nil && q.local > 0 {
		others[key+"."+p.node] = pullerEntry{Topic: q.topic, Pullers: q.local, Exclusive: q.exclusive}
	}
	p.mu.Unlock()
	return others, nil
}

// storedDead is a dead letter and its place in the dead-letter stream.
type storedDead struct {
	broker.DeadLetter
	seq uint64
}

// readDead reads topic's dead letters, oldest first; limit 0 reads all.
func (p *Backplane) readDead(topic broker.Topic, limit int) ([]storedDead, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	cons, err := p.js.OrderedConsumer(ctx, p.deadStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectOf(p.deadPrefix, topic)}, InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	var out []storedDead
	for {
		batch, err := cons.FetchNoWait(replayBatch)
		if err != nil {
			return nil, err
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			if done {
				continue
			}
			m, meta, err := messageOf(p.deadPrefix, msg)
			if err != nil {
				continue
			}
			h := msg.Headers()
			id, _ := strconv.ParseUint(h.Get(hdrID), 10, 64)
			attempts, _ := strconv.Atoi(h.Get(hdrAttempts))
			m.Seq = id
			out = append(out, storedDead{seq: meta.Sequence.Stream, DeadLetter: broker.DeadLetter{
				ID: id, Message: m, Attempts: attempts, LastError: h.Get(hdrError), Died: meta.Timestamp}})
			done = meta.NumPending == 0 || limit > 0 && len(out) >= limit
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if done || n == 0 {
			return out, nil
		}
	}
}

// deadOf reads topic's dead letters of a queue that must exist.
func (p *Backplane) deadOf(topic broker.Topic, limit int) ([]storedDead, error) {
	var dead []storedDead
	err := p.retry(func() (err error) {
		dead, err = p.readDead(topic, limit)
		return err
	})
	if err != nil {
		return nil, p.unavailable("read the dead letters", err)
	}
	if len(dead) == 0 {
		if ok, err := p.QueueExists(topic); err != nil || !ok {
			return nil, errors.Join(broker.ErrNoQueue, err)
		}
	}
	return dead, nil
}

// DeadLetters returns topic's dead letters, oldest first
// (broker.QueueBackplane).
func (p *Backplane) DeadLetters(topic broker.Topic) ([]broker.DeadLetter, error) {
	dead, err := p.deadOf(topic, 0)
	if err != nil {
		return nil, err
	}
	out := make([]broker.DeadLetter, len(dead))
	for i := range dead {
		out[i] = dead[i].DeadLetter
	}
	return out, nil
}

// deleteDead deletes one dead letter; false when another broker did first.
func (p *Backplane) deleteDead(seq uint64) (bool, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.deadStream)
	if err == nil {
		err = st.DeleteMsg(ctx, seq)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) || err != nil && errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return false, nil
	}
	return err == nil, err
}

// PopDead removes and returns the oldest dead letter (broker.QueueBackplane).
func (p *Backplane) PopDead(topic broker.Topic) (*broker.DeadLetter, error) {
	for range 5 {
		dead, err := p.deadOf(topic, 1)
		if err != nil {
			return nil, err
		}
		if len(dead) == 0 {
			return nil, broker.ErrNoDeadLetters
		}
		ok, err := p.deleteDead(dead[0].seq)
		if err != nil {
			return nil, p.unavailable("pop the dead letter", err)
		}
		if ok {
			return &dead[0].DeadLetter, nil
		}
	}
	return nil, broker.ErrNoDeadLetters
}

// Requeue moves dead letter id (every one for 0) back to its queue, for a
// fresh set of attempts under the same id (broker.QueueBackplane).
func (p *Backplane) Requeue(topic broker.Topic, id uint64) (int, error) {
	dead, err := p.deadOf(topic, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dead {
		if id != 0 && d.ID != id {
			continue
		}
		msg := nats.NewMsg(subjectOf(p.queuePrefix, topic))
		msg.Data = d.Message.Payload
		msg.Header.Set(hdrID, itoa(d.ID)) // it keeps its id
		msg.Header.Set(hdrError, d.LastError)
		msg.Header.Set(hdrTime, d.Message.Time.UTC().Format(time.RFC3339Nano))
		if d.Message.Binary {
			msg.Header.Set(hdrBinary, "1")
		}
		ctx, cancel := p.reqCtx()
		_, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.queueStream))
		cancel()
		if err != nil {
			return n, p.unavailable("requeue a dead letter", err)
		}
		if _, err := p.deleteDead(d.seq); err != nil {
			return n, p.unavailable("delete a requeued dead letter", err)
		}
		n++
	}
	if n == 0 {
		return 0, broker.ErrNoDeadLetters
	}
	return n, nil
}

// PurgeDead deletes every dead letter of topic (broker.QueueBackplane).
func (p *Backplane) PurgeDead(topic broker.Topic) (int, error) {
	if ok, err := p.QueueExists(topic); err != nil || !ok {
		counts, cerr := p.subjectCounts(p.deadStream, p.deadPrefix)
		if cerr != nil || counts[subjectOf(p.deadPrefix, topic)] == 0 {
			return 0, errors.Join(broker.ErrNoQueue, err)
		}
	}
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.deadStream)
	if err != nil {
		return 0, p.unavailable("purge the dead letters", err)
	}
	before := st.CachedInfo().State.Msgs
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subjectOf(p.deadPrefix, topic))); err != nil {
		return 0, p.unavailable("purge the dead letters", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, p.unavailable("count the dead letters", err)
	}
	return int(before - info.State.Msgs), nil
}
