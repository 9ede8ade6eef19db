package nats

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// replayBatch is how many messages one fetch of a replay asks for.
const replayBatch = 256

// Replay reads the stored messages under topic with sequence numbers in
// (since, upTo] with an ordered consumer filtered on the topic's subtree
// (broker.Backplane).
func (p *Backplane) Replay(topic broker.Topic, since, upTo uint64, fn func(*broker.Message)) (uint64, error) {
	// Retried from the start after a transient failure: what was read is
	// read again, so it is only handed on once the whole range is in.
	var msgs []*broker.Message
	var first uint64
	err := p.retry(func() (err error) {
		msgs = msgs[:0]
		first, err = p.replay(topic, since, upTo, func(m *broker.Message) { msgs = append(msgs, m) })
		return err
	})
	if err != nil {
		return 0, p.unavailable("replay", err)
	}
	for _, m := range msgs {
		fn(m)
	}
	return first, nil
}

// replay reads the range once.
func (p *Backplane) replay(topic broker.Topic, since, upTo uint64, fn func(*broker.Message)) (uint64, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return 0, err
	}
	first := st.CachedInfo().State.FirstSeq
	if first > upTo {
		return first, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filtersUnder(p.pubPrefix, topic),
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: since + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return 0, err
	}
	for {
		batch, err := cons.FetchNoWait(replayBatch)
		if err != nil {
			return 0, err
		}
		n := 0
		done := false
		for msg := range batch.Messages() {
			n++
			m, meta, err := messageOf(p.pubPrefix, msg)
			if err != nil || done {
				continue
			}
			if m.Seq > upTo {
				done = true
				continue
			}
			fn(m)
			if m.Seq == upTo || meta.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return 0, err
		}
		if done || n == 0 {
			return first, nil
		}
	}
}
