package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercury-broker/mercury/broker/trie"
)

// Message is one accepted message. The broker shares a *Message between
// all its receivers: nobody may modify it once published.
type Message struct {
	Topic   Topic
	Seq     uint64    // set by the broker when it accepts the message
	Epoch   string    // the epoch Seq is from (see Broker.Epoch)
	Time    time.Time // set by the broker when it accepts the message
	Binary  bool      // a binary frame rather than text
	Payload []byte

	envelopeCache
}

// A Receiver takes messages for one subscriber or bus peer. Deliver must
// not block: a receiver that cannot keep up deals with that itself (the
// web layer closes a slow consumer).
type Receiver interface {
	Deliver(m *Message)
}

// Options configures a Broker. The zero value gives the documented
// defaults.
type Options struct {
	// QueueLimit caps the messages waiting in one push/pull queue, unless
	// the bus's policy says otherwise. Default 10,000.
	QueueLimit int
	// MaxMemory bounds the message bytes the broker holds for clients:
	// queued messages and in-memory history (see budget.go). Past it, a
	// push is refused with ErrQueueFull. Default DefaultMaxMemory().
	MaxMemory int64
	// Policies holds the bus settings; SetPolicies replaces them.
	Policies *Policies
	// Store keeps durable buses on disk; nil keeps nothing (a durable bus
	// then refuses to start, see Open).
	Store Store
	// Backplane joins this broker to others that share it (see
	// Backplane); nil: a single broker. Durable buses need no Store then:
	// the backplane keeps their messages.
	Backplane Backplane
	// Logger receives what the broker has to say (queue expiry, store
	// failures). Default slog.Default().
	Logger *slog.Logger
	// Now stamps messages and times deadlines. Default time.Now.
	Now func() time.Time
	// MaxPendingRequests caps the requests waiting for answers at once
	// (see Request). Default 10,000.
	MaxPendingRequests int
}

// DefaultQueueLimit is the default of Options.QueueLimit.
const DefaultQueueLimit = 10000

// Errors returned by the broker.
var (
	ErrQueueFull = errors.New("broker: queue is full")
	ErrNoStore   = errors.New("broker: a bus is durable but no store is open")
)

// Broker routes messages between the three patterns, each its own
// namespace: publish/subscribe over the topic hierarchy, bus rooms on exact
// topics, and push/pull work queues.
type Broker struct {
	opts     Options
	policyPt atomic.Pointer[Policies]

	// pubMu orders stamping with history and fan-out, so every receiver
	// sees messages in sequence order and replay joins live without a gap.
	pubMu       sync.Mutex
	seq         uint64
	epoch       string // names this life of seq (see epoch.go)
	seqLease    uint64 // with a store: the highest seq the store allows
	historyFrom uint64 // history before this seq was not kept (a restart, a reload)
	rings       map[Topic]*ring
	trimPending map[Topic]uint64 // durable buses whose store needs trimming
	stats       trafficStats     // traffic per topic and bus

	subs  trie.Tree[Receiver]
	peers trie.Tree[*busPeer]

	queuesMu sync.Mutex
	queues   map[Topic]*queue
	mem      memBudget // the bytes held for clients, against MaxMemory

	bp      Backplane      // nil for a single broker
	qbp     QueueBackplane // nil unless bp shares queues
	abp     AsyncPublisher // nil unless bp publishes without waiting
	ibp     InterestFeed   // nil unless bp's feed brings only what is wanted
	peerIDs atomic.Uint64  // numbers bus peers, for a backplane's Origin

	agbp     AgentBackplane // nil unless bp shares presence and requests
	presence presence       // who is subscribed, for presence (presence.go)
	requests requests       // requests waiting for answers (request.go)
}

// New returns a broker without a store: nothing survives a restart. Use
// Open for a broker with durable buses.
func New(opts Options) *Broker {
	opts.Store = nil
	b, err := Open(opts)
	if err != nil {
		// Without a store there is nothing to load and nothing to fail.
		panic(err)
	}
	return b
}

// Open returns a broker. With a store, it loads the sequence lease, the
// retained messages of durable buses and their queues, so that what was
// confirmed before a restart is there again. A durable bus without a store
// is an error.
func Open(opts Options) (*Broker, error) {
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPendingRequests <= 0 {
		opts.MaxPendingRequests = DefaultMaxPendingRequests
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Broker{
		opts:        opts,
		rings:       make(map[Topic]*ring),
		trimPending: make(map[Topic]uint64),
		queues:      make(map[Topic]*queue),
		bp:          opts.Backplane,
	}
	b.mem.limit = opts.MaxMemory
	if b.bp != nil {
		b.qbp, _ = b.bp.(QueueBackplane)
		b.abp, _ = b.bp.(AsyncPublisher)
		b.ibp, _ = b.bp.(InterestFeed)
		b.agbp, _ = b.bp.(AgentBackplane)
	}
	b.presence.peers = make(map[string]map[uint64]Presence)
	if err := b.SetPolicies(opts.Policies); err != nil {
		return nil, err
	}
	if b.bp != nil {
		last, err := b.bp.Start(b.receive)
		if err != nil {
			return nil, fmt.Errorf("failed to start the cluster feed: %w", err)
		}
		b.seq = last
		if e, ok := b.bp.(Epocher); ok {
			b.epoch = e.Epoch()
		}
		if b.agbp != nil {
			if err := b.agbp.StartAgents(agentFeed{b}); err != nil {
				return nil, fmt.Errorf("failed to start presence and requests on the cluster: %w", err)
			}
		}
		return b, nil
	}
	if opts.Store == nil {
		b.epoch = newEpoch() // sequence numbers start afresh
		return b, nil
	}
	if err := b.load(); err != nil {
		return nil, err
	}
	return b, nil
}

// SetPolicies replaces the bus settings, as a config reload does. Queues
// already open keep their settings; history kept so far stays.
func (b *Broker) SetPolicies(p *Policies) error {
	if pw, ok := b.bp.(PolicyWatcher); ok {
		if err := pw.SetPolicies(p); err != nil {
			return fmt.Errorf("failed to apply the bus settings to the cluster: %w", err)
		}
	}
	if b.opts.Store == nil && b.bp == nil {
		for _, pol := range p.All() {
			if pol.Durable {
				return fmt.Errorf("bus %s: %w", pol.Bus, ErrNoStore)
			}
		}
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if b.policyPt.Swap(p) != nil {
		b.historyFrom = b.seq
	}
	return nil
}

func (b *Broker) policies() *Policies { return b.policyPt.Load() }

// Policy returns the policy of the bus topic lies under.
func (b *Broker) Policy(topic Topic) *Policy { return b.policies().Lookup(topic) }

// stamp gives m its sequence number and time; pubMu must be held.
func (b *Broker) stamp(m *Message) error {
	if b.opts.Store != nil && b.seq >= b.seqLease {
		if err := b.opts.Store.SaveSeq(b.seqLease + seqLeaseBlock); err != nil {
			return fmt.Errorf("failed to extend the sequence lease: %w", err)
		}
		b.seqLease += seqLeaseBlock
	}
	b.seq++
	m.Seq, m.Epoch = b.seq, b.epoch
	m.Time = b.opts.Now()
	return nil
}

// LastSeq returns the last sequence number given out.
func (b *Broker) LastSeq() uint64 {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	return b.seq
}

// Publish accepts m on the publish/subscribe namespace and hands it to
// every subscriber of its topic and of the topics above it. On a durable
// bus it returns once m is on disk; subscribers may see it a moment before.
func (b *Broker) Publish(m *Message) error {
	if b.bp != nil {
		// Fanned out when the backplane's feed brings it back.
		return b.bp.Publish(m, KindPublish, Origin{Node: b.bp.Node()})
	}
	var buf [8][]Receiver
	pol := b.policies().Lookup(m.Topic)
	b.pubMu.Lock()
	if err := b.stamp(m); err != nil {
		b.pubMu.Unlock()
		return err
	}
	b.record(pol, m)
	delivered := 0
	for _, level := range b.subs.Match(string(m.Topic), buf[:0]) {
		for _, r := range level {
			r.Deliver(m)
		}
		delivered += len(level)
	}
	b.count(pol.Bus, m, delivered)
	var trimBus Topic
	var trimUpTo uint64
	for bus, upTo := range b.trimPending {
		trimBus, trimUpTo = bus, upTo
		delete(b.trimPending, bus)
		break
	}
	b.pubMu.Unlock()

	// The trim first: it does not wait, and joins the append's fsync.
	if trimBus != "" {
		b.storeErr("trim history", b.opts.Store.TrimMessages(trimBus, trimUpTo))
	}
	if pol.Durable && b.opts.Store != nil {
		if err := b.opts.Store.AppendMessage(pol.Bus, m); err != nil {
			return fmt.Errorf("failed to store the message: %w", err)
		}
	}
	return nil
}

// Subscribe makes r receive what is published to topic and below it, until
// the returned function is called.
func (b *Broker) Subscribe(topic Topic, r Receiver) (unsubscribe func()) {
	return b.want(KindPublish, topic, func(uint64) { b.subs.Insert(string(topic), r) },
		func() { b.subs.Remove(string(topic), r) })
}

// want runs attach, after which the receiver it attaches gets what is
// sent, and returns what runs detach once. On a backplane whose feed
// brings only what is wanted, attach runs as the interest is added, told
// the sequence number the feed is paused at (see InterestFeed), and the
// interest is dropped after detach; otherwise from is 0.
func (b *Broker) want(kind Kind, topic Topic, attach func(from uint64), detach func()) func() {
	release := func() {}
	if b.ibp != nil {
		release = b.ibp.Want(kind, topic, attach)
	} else {
		attach(0)
	}
	var once sync.Once
	return func() { once.Do(func() { detach(); release() }) }
}

// Subscriptions returns the number of live subscriptions and the number of
// trie nodes holding them (zero when there are none: nothing leaks).
func (b *Broker) Subscriptions() (subs, nodes int) {
	return b.subs.Len(), b.subs.Nodes()
}

// Topics calls fn with each subscribed topic and its subscriber count.
func (b *Broker) Topics(fn func(t Topic, subscribers int)) {
	b.subs.Walk(func(path string, rs []Receiver) { fn(Topic(path), len(rs)) })
}

// Close stops the broker's timers. The store, if any, is the caller's to
// close afterwards.
func (b *Broker) Close() {
	b.queuesMu.Lock()
	defer b.queuesMu.Unlock()
	for _, q := range b.queues {
		q.mu.Lock()
		if q.timer != nil {
			q.timer.Stop()
		}
		if q.remote != nil {
			q.remote.Close()
			q.remote = nil
			q.nakSurplus()
		}
		q.deleted = true
		q.mu.Unlock()
	}
	clear(b.queues)
}
