package nats

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// Headers a message carries on NATS. Its topic is its subject, its
// sequence number and time the stream's.
const (
	hdrNode     = "Mercury-Node"     // the broker that took it
	hdrPeer     = "Mercury-Peer"     // the sending bus peer on that broker
	hdrBinary   = "Mercury-Binary"   // "1": a binary frame
	hdrID       = "Mercury-Id"       // a dead letter's id in its queue
	hdrAttempts = "Mercury-Attempts" // a dead letter's attempts
	hdrError    = "Mercury-Error"    // why its last attempt failed
	hdrTime     = "Mercury-Time"     // when it was first accepted, if not the stream's time
)

// Publish stores a published or bus message in the message stream and
// sets its sequence number and time once JetStream acknowledged it
// (broker.Backplane).
func (p *Backplane) Publish(m *broker.Message, kind broker.Kind, from broker.Origin) error {
	if err := p.Ready(); err != nil {
		return err
	}
	msg := p.natsMsg(m, kind, from)
	ctx, cancel := p.reqCtx()
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.stream))
	if err != nil {
		return p.unavailable("store the message", err)
	}
	m.Seq, m.Time = ack.Sequence, time.Now()
	return nil
}

// natsMsg is m on its way to the message stream.
func (p *Backplane) natsMsg(m *broker.Message, kind broker.Kind, from broker.Origin) *nats.Msg {
	prefix := p.pubPrefix
	if kind == broker.KindBus {
		prefix = p.busPrefix
	}
	msg := nats.NewMsg(subjectOf(prefix, m.Topic))
	msg.Data = m.Payload
	msg.Header.Set(hdrNode, from.Node)
	if from.Peer != 0 {
		msg.Header.Set(hdrPeer, strconv.FormatUint(from.Peer, 10))
	}
	if m.Binary {
		msg.Header.Set(hdrBinary, "1")
	}
	return msg
}

// asyncPub is a message published without waiting, until JetStream answers.
type asyncPub struct {
	m    *broker.Message
	done func(error)
}

// PublishAsync stores m like Publish, without waiting: done is called from
// the NATS client's goroutine once JetStream acknowledged it, or with the
// error (broker.AsyncPublisher). The client sends in call order, and gives
// up rather than resend, so the stream keeps that order.
func (p *Backplane) PublishAsync(m *broker.Message, kind broker.Kind, from broker.Origin, done func(error)) {
	if err := p.Ready(); err != nil {
		done(err)
		return
	}
	msg := p.natsMsg(m, kind, from)
	p.async.Store(msg, asyncPub{m: m, done: done})
	if _, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(p.stream), jetstream.WithRetryAttempts(0)); err != nil {
		if _, mine := p.async.LoadAndDelete(msg); mine {
			done(p.unavailable("store the message", err))
		}
	}
}

// asyncAcked completes an asynchronous publish JetStream acknowledged.
func (p *Backplane) asyncAcked(_ jetstream.JetStream, msg *nats.Msg, ack *jetstream.PubAck) {
	if v, ok := p.async.LoadAndDelete(msg); ok {
		pub := v.(asyncPub)
		pub.m.Seq, pub.m.Time = ack.Sequence, time.Now()
		pub.done(nil)
	}
}

// asyncFailed completes an asynchronous publish that failed.
func (p *Backplane) asyncFailed(_ jetstream.JetStream, msg *nats.Msg, err error) {
	if v, ok := p.async.LoadAndDelete(msg); ok {
		v.(asyncPub).done(p.unavailable("store the message", err))
	}
}

// messageOf decodes a message of a stream under prefix.
func messageOf(prefix string, msg jetstream.Msg) (*broker.Message, *jetstream.MsgMetadata, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, nil, err
	}
	topic, err := topicOf(prefix, msg.Subject())
	if err != nil {
		return nil, nil, err
	}
	h := msg.Headers()
	m := &broker.Message{Topic: topic, Seq: meta.Sequence.Stream, Time: meta.Timestamp,
		Binary: h.Get(hdrBinary) == "1", Payload: msg.Data()}
	if t := h.Get(hdrTime); t != "" {
		if at, err := time.Parse(time.RFC3339Nano, t); err == nil {
			m.Time = at
		}
	}
	return m, meta, nil
}
