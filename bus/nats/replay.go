package nats

import (
	"cmp"
	"context"
	"errors"
	"slices"
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
	filters := filtersUnder(p.pubPrefix, topic)
	if !p.oneFilter.Load() {
		err = p.replayFiltered(ctx, st, filters, since, upTo, fn)
		if !errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
			if err != nil {
				return 0, err
			}
			return first, nil
		}
		p.oneFilter.Store(true)
	}
	// A server before 2.10 takes one filter per consumer: read the topic
	// and the topics below it apart, and merge them in sequence order.
	var msgs []*broker.Message
	for _, f := range filters {
		if err := p.replayFiltered(ctx, st, []string{f}, since, upTo, func(m *broker.Message) { msgs = append(msgs, m) }); err != nil {
			return 0, err
		}
	}
	slices.SortFunc(msgs, func(a, b *broker.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, m := range msgs {
		fn(m)
	}
	return first, nil
}

// replayFiltered reads the messages of the range on the subjects of
// filters with one ordered consumer.
func (p *Backplane) replayFiltered(ctx context.Context, st jetstream.Stream, filters []string, since, upTo uint64, fn func(*broker.Message)) error {
	return readRange(ctx, st, filters, since, upTo, func(msg jetstream.Msg) {
		if m, _, err := messageOf(p.pubPrefix, msg); err == nil {
			fn(m)
		}
	})
}

// readRange hands fn the stream's messages after since up to upTo on the
// subjects of filters (every subject without filters), in order, read
// with one ordered consumer.
func readRange(ctx context.Context, st jetstream.Stream, filters []string, since, upTo uint64, fn func(jetstream.Msg)) error {
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: since + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(replayBatch)
		if err != nil {
			return err
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil || done {
				continue
			}
			if meta.Sequence.Stream > upTo {
				done = true
				continue
			}
			fn(msg)
			done = meta.Sequence.Stream == upTo || meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if done || n == 0 {
			return nil
		}
	}
}
