package nats

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// Start starts this broker's feed: an ordered consumer of the whole
// message stream from the next message on (broker.Backplane). The NATS
// client recreates it from where it stopped after a reconnection, so the
// feed has neither gap nor duplicate.
func (p *Backplane) Start(deliver func(m *broker.Message, kind broker.Kind, from broker.Origin)) (uint64, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return 0, p.unavailable("open the message stream", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, p.unavailable("read the message stream", err)
	}
	last := info.State.LastSeq
	// The stream's sequence numbers start afresh only with a new stream:
	// its creation names their epoch, the same for every broker.
	epoch := strconv.FormatInt(info.Created.UnixNano(), 36)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1,
	})
	if err != nil {
		return 0, p.unavailable("follow the message stream", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		kind, prefix := broker.KindPublish, p.pubPrefix
		if strings.HasPrefix(msg.Subject(), p.busPrefix+".") {
			kind, prefix = broker.KindBus, p.busPrefix
		}
		m, _, err := messageOf(prefix, msg)
		if err != nil {
			p.log.Error("cluster: a message that is not Mercury's in the stream", "subject", msg.Subject(), "err", err)
			return
		}
		from := broker.Origin{Node: msg.Headers().Get(hdrNode)}
		from.Peer, _ = strconv.ParseUint(msg.Headers().Get(hdrPeer), 10, 64)
		deliver(m, kind, from)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			p.log.Warn("cluster: feed", "err", err)
		}
	}))
	if err != nil {
		return 0, p.unavailable("follow the message stream", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.feed != nil || p.closed {
		cc.Stop()
		return 0, fmt.Errorf("nats: the feed was already started, or the backplane closed")
	}
	p.feed, p.epoch = cc, epoch
	return last, nil
}

// Epoch returns the epoch of the stream's sequence numbers, known once
// the feed started (broker.Epocher).
func (p *Backplane) Epoch() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

var _ broker.Epocher = (*Backplane)(nil)
