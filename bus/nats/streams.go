package nats

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// Limits of the message stream when no bus keeps history: long enough for
// every broker's feed to catch up after a reconnection.
const minStreamAge = time.Hour

// pullerLease is how long a broker's registration of its pullers lives
// without being refreshed: a broker that died frees its exclusive queues
// after this long.
const pullerLease = 15 * time.Second

// setUp creates or updates the streams and buckets.
func (p *Backplane) setUp() error {
	if p.opts.Replicas <= 0 {
		p.opts.Replicas = 1
		if p.nc.ConnectedClusterName() != "" {
			p.opts.Replicas = 3
		}
	}
	// Each request has its own deadline: one for all would leave the last
	// ones little time, the creation of a replicated stream being slow.
	if err := p.request(func(ctx context.Context) error { _, err := p.js.AccountInfo(ctx); return err }); err != nil {
		return fmt.Errorf("failed to reach JetStream (is it enabled on the NATS servers?): %w", err)
	}
	streams := []jetstream.StreamConfig{
		p.messageStream(),
		{
			Name: p.queueStream, Subjects: []string{p.queuePrefix + ".>"},
			Description: "Mercury push/pull queues", Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: p.opts.Replicas,
			MaxMsgsPerSubject: int64(p.opts.QueueLimit), Discard: jetstream.DiscardNew, DiscardNewPerSubject: true,
		},
		{
			Name: p.deadStream, Subjects: []string{p.deadPrefix + ".>"},
			Description: "Mercury dead letters", Storage: jetstream.FileStorage, Replicas: p.opts.Replicas,
			AllowDirect: true,
		},
	}
	for _, cfg := range streams {
		if err := p.request(func(ctx context.Context) error { _, err := p.js.CreateOrUpdateStream(ctx, cfg); return err }); err != nil {
			return fmt.Errorf("failed to create the stream %s: %w", cfg.Name, err)
		}
	}
	buckets := []struct {
		kv   *jetstream.KeyValue
		what string
		cfg  jetstream.KeyValueConfig
	}{
		{&p.queueInfo, "queue", jetstream.KeyValueConfig{
			Bucket: p.stream + "_QUEUE_INFO", Description: "Mercury queues: topic, TTL, last use",
			Storage: jetstream.FileStorage, Replicas: p.opts.Replicas,
		}},
		{&p.uncounted, "uncounted", jetstream.KeyValueConfig{
			Bucket: p.stream + "_UNCOUNTED", Description: "Mercury: deliveries of queued messages that were no attempt",
			Storage: jetstream.FileStorage, Replicas: p.opts.Replicas,
		}},
		{&p.pullers, "puller", jetstream.KeyValueConfig{
			Bucket: p.stream + "_PULLERS", Description: "Mercury pullers per queue and broker (leases)",
			Storage: jetstream.MemoryStorage, Replicas: p.opts.Replicas, TTL: pullerLease,
		}},
	}
	for _, b := range buckets {
		err := p.request(func(ctx context.Context) (err error) {
			*b.kv, err = p.js.CreateOrUpdateKeyValue(ctx, b.cfg)
			return err
		})
		if err != nil {
			return fmt.Errorf("failed to create the %s bucket: %w", b.what, err)
		}
	}
	return nil
}

// request runs one request to NATS with a deadline of its own.
func (p *Backplane) request(fn func(ctx context.Context) error) error {
	ctx, cancel := p.reqCtx()
	defer cancel()
	return fn(ctx)
}

// messageStream is the configuration of the stream of published and bus
// messages, sized from the bus settings: as old as the longest history,
// as many as the histories add up to, at most MaxBytes.
func (p *Backplane) messageStream() jetstream.StreamConfig {
	p.mu.Lock()
	age, msgs := p.policyAge, p.policyMsg
	p.mu.Unlock()
	if msgs == 0 {
		msgs = -1
	}
	switch {
	case age < 0:
		age = 0 // a bus keeps history by count only: no age limit
	case age < minStreamAge:
		age = minStreamAge
	}
	return jetstream.StreamConfig{
		Name: p.stream, Subjects: []string{p.pubPrefix + ".>", p.busPrefix + ".>"},
		Description: "Mercury published and bus messages", Storage: jetstream.FileStorage,
		Replicas: p.opts.Replicas, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: age, MaxMsgs: msgs, MaxBytes: p.opts.MaxBytes, AllowDirect: true,
	}
}

// SetPolicies sizes the message stream from the bus settings
// (broker.PolicyWatcher). Retention per bus is enforced again at replay.
func (p *Backplane) SetPolicies(ps *broker.Policies) error {
	var age time.Duration // -1: no age limit
	var msgs int64        // -1: no count limit
	unbounded := false
	for _, pol := range ps.All() {
		h := pol.History
		if pol.Durable && h == (broker.History{}) {
			h = broker.DefaultDurableHistory
		}
		if h == (broker.History{}) {
			continue
		}
		if h.Age == 0 {
			unbounded = true // kept by count only: no age limit
		}
		age = max(age, h.Age)
		if h.Messages == 0 {
			msgs = -1
		} else if msgs >= 0 {
			msgs += int64(h.Messages)
		}
	}
	if unbounded {
		age = -1
	}
	if msgs > 0 {
		// Room for the messages of topics that keep no history, which
		// share the stream.
		msgs *= 4
	}
	p.mu.Lock()
	p.policyAge, p.policyMsg = age, msgs
	p.mu.Unlock()
	cfg := p.messageStream()
	ctx, cancel := p.reqCtx()
	defer cancel()
	if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
		return p.unavailable("size the message stream", err)
	}
	return nil
}
