package broker

import (
	"errors"
	"sync"
	"time"

	"github.com/mercury-broker/mercury/broker/trie"
)

// Message is one accepted message. The broker shares a *Message between
// all its receivers: nobody may modify it once published.
type Message struct {
	Topic   Topic
	Seq     uint64    // set by the broker when it accepts the message
	Time    time.Time // set by the broker when it accepts the message
	Binary  bool      // a binary frame rather than text
	Payload []byte
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
	// QueueLimit caps the messages waiting in one push/pull queue.
	// Default 10,000.
	QueueLimit int
	// Now stamps messages. Default time.Now.
	Now func() time.Time
}

// DefaultQueueLimit is the default of Options.QueueLimit.
const DefaultQueueLimit = 10000

// Errors returned by the broker.
var (
	ErrQueueFull = errors.New("broker: queue is full")
	ErrClosed    = errors.New("broker: closed")
)

// Broker routes messages between the three patterns, each its own
// namespace: publish/subscribe over the topic hierarchy, bus rooms on exact
// topics, and push/pull work queues.
type Broker struct {
	opts Options

	// pubMu orders stamping with fan-out, so every receiver sees messages
	// in sequence order.
	pubMu sync.Mutex
	seq   uint64

	subs  trie.Tree[Receiver]
	peers trie.Tree[*busPeer]

	queuesMu sync.RWMutex
	queues   map[Topic]*queue
}

// New returns a broker ready for use.
func New(opts Options) *Broker {
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Broker{opts: opts, queues: make(map[Topic]*queue)}
}

// stamp gives m its sequence number and time; pubMu must be held.
func (b *Broker) stamp(m *Message) {
	b.seq++
	m.Seq = b.seq
	m.Time = b.opts.Now()
}

// Publish accepts m on the publish/subscribe namespace and hands it to
// every subscriber of its topic and of the topics above it.
func (b *Broker) Publish(m *Message) error {
	var buf [8][]Receiver
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.stamp(m)
	for _, level := range b.subs.Match(string(m.Topic), buf[:0]) {
		for _, r := range level {
			r.Deliver(m)
		}
	}
	return nil
}

// Subscribe makes r receive what is published to topic and below it, until
// the returned function is called.
func (b *Broker) Subscribe(topic Topic, r Receiver) (unsubscribe func()) {
	b.subs.Insert(string(topic), r)
	var once sync.Once
	return func() { once.Do(func() { b.subs.Remove(string(topic), r) }) }
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
