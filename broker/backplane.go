package broker

import (
	"errors"
	"time"
)

// Backplane joins the brokers that share it into one (bus/nats implements
// it on NATS JetStream; the broker never imports it). Every pub/sub and
// bus message goes through the backplane, which stores it and gives it its
// sequence number, the same on every broker; the backplane then hands it
// back to every broker, this one included, through the feed given to
// Start, in sequence order, exactly once. Each broker fans the feed out to
// its own subscribers and bus peers.
//
// Implementations must be safe for concurrent use. Optional capabilities
// are separate interfaces, discovered by type assertion: QueueBackplane
// (push/pull shared by the brokers) and PolicyWatcher (bus settings).
type Backplane interface {
	// Start starts the feed: deliver is called, from one goroutine, for
	// every message stored after the moment Start returns, in sequence
	// order. Start returns the sequence number of the last message stored
	// before that moment.
	Start(deliver func(m *Message, kind Kind, from Origin)) (last uint64, err error)
	// Publish stores m and sets its Seq and Time. It returns once the
	// message is stored, or an error wrapping ErrUnavailable when it
	// cannot be. from is the sending bus peer.
	Publish(m *Message, kind Kind, from Origin) error
	// Replay calls fn, in sequence order, with the stored pub/sub
	// messages under topic whose sequence numbers lie in (since, upTo].
	// It returns the lowest sequence number still stored (anything below
	// was discarded by the backplane's limits).
	Replay(topic Topic, since, upTo uint64, fn func(*Message)) (first uint64, err error)
	// Ready returns nil while messages can be stored, or why not.
	Ready() error
	// Node identifies this broker among those sharing the backplane.
	Node() string
}

// Kind says which namespace a message travels in.
type Kind uint8

// Kinds of messages on a backplane.
const (
	KindPublish Kind = iota + 1 // publish/subscribe, hierarchical
	KindBus                     // bus room, exact topic
)

// Origin is where a message was sent from: the broker's node and, for a
// bus message, the sending peer (0: none, an HTTP POST). A peer is skipped
// for its own message unless it joined with echo.
type Origin struct {
	Node string
	Peer uint64
}

// ErrUnavailable is wrapped by the errors of a backplane that cannot store
// a message now (it lost its connection): the message was not accepted.
var ErrUnavailable = errors.New("broker: the cluster is unavailable")

// AsyncPublisher is the capability of a backplane that stores messages
// without making the caller wait: done is called once m is stored (its Seq
// set) or could not be, possibly on another goroutine. Messages published
// from one goroutine are stored in the order of the calls.
type AsyncPublisher interface {
	PublishAsync(m *Message, kind Kind, from Origin, done func(error))
}

// InterestFeed is the capability of a backplane whose feed brings only
// what this broker's subscribers and bus peers want, instead of every
// message: Start's deliver then sees a subsequence of the stream, still in
// sequence order.
type InterestFeed interface {
	// Want adds an interest in kind's messages on topic (its subtree for
	// KindPublish, exactly topic for KindBus) and calls attach, which
	// must not call the backplane, while the feed is paused at from:
	// every message of the interest numbered above from is delivered
	// afterwards, once, and none up to from. from is at least the last
	// sequence number delivered before. release drops the interest; the
	// feed may bring its messages a while longer.
	Want(kind Kind, topic Topic, attach func(from uint64)) (release func())
}

// PolicyWatcher is the capability of a backplane that sizes its storage
// from the bus settings. SetPolicies is called at Open and on each reload.
type PolicyWatcher interface {
	SetPolicies(p *Policies) error
}

// QueueBackplane is the capability of a backplane that shares push/pull
// queues between the brokers: each pushed message goes to exactly one
// puller among all of them. Each broker dispatches to its own pullers
// round-robin with their credit, as a single broker does; the backplane
// keeps the messages, counts the attempts, keeps the dead letters and
// decides which broker gets which message.
type QueueBackplane interface {
	// Push stores m in topic's queue and sets its Seq (the delivery id)
	// and Time. It fails with ErrNoQueue (opts.MustExist), ErrQueueFull or
	// an error wrapping ErrUnavailable.
	Push(m *Message, qp QueuePolicy, opts PushOptions) error
	// OpenQueue starts taking messages of topic's queue for this broker's
	// pullers, and feeding them to feed, as many as the last
	// RemoteQueue.Want asked for.
	OpenQueue(topic Topic, qp QueuePolicy, feed QueueFeed) (RemoteQueue, error)
	// QueueExists reports whether topic's queue exists on the cluster.
	QueueExists(topic Topic) (bool, error)
	// QueueStats returns the stats of every queue on the cluster.
	QueueStats() ([]QueueStats, error)
	DeadLetters(topic Topic) ([]DeadLetter, error)
	Requeue(topic Topic, id uint64) (int, error)
	PopDead(topic Topic) (*DeadLetter, error)
	PurgeDead(topic Topic) (int, error)
}

// RemoteQueue is one broker's hold on a queue shared through a
// QueueBackplane, while it has pullers.
type RemoteQueue interface {
	// Join registers this broker's pullers with the cluster as local
	// pullers once opts's puller joins. An exclusive puller is refused
	// (ErrQueueBusy) while another broker has pullers, any puller while
	// another broker has an exclusive one (ErrExclusive); a takeover
	// evicts the pullers of the other brokers.
	Join(opts PullOptions, local int) error
	// Leave updates the registration after a puller left: local pullers
	// remain, exclusive or not.
	Leave(local int, exclusive bool)
	// Want says how many more messages this broker's pullers can take now;
	// it must not block.
	Want(n int)
	// Close stops taking messages. What arrives afterwards is given back.
	Close()
}

// QueueFeed takes what a QueueBackplane hands one broker for a queue.
type QueueFeed interface {
	// Offer hands over one message on its attempt (1 the first time),
	// with what settles it on the backplane.
	Offer(m *Message, attempt int, s Settler)
	// Evict closes every local puller of the queue: another broker took
	// it over.
	Evict(reason string)
}

// Settler settles one message a QueueBackplane handed to this broker.
// Its methods must not block for long: they run under the queue's lock.
type Settler interface {
	Ack()
	// Nak gives the message back for another attempt after delay.
	Nak(delay time.Duration)
	// Return gives the message back without spending an attempt: no
	// puller here took it, or a raw puller left before writing it.
	Return()
	// Dead moves the message to the dead letters.
	Dead(dl DeadLetter)
}

// Ready returns nil when the broker can accept messages: always for a
// single broker, while the backplane is connected for a cluster.
func (b *Broker) Ready() error {
	if b.bp == nil {
		return nil
	}
	return b.bp.Ready()
}

// Clustered reports whether the broker shares a backplane.
func (b *Broker) Clustered() bool { return b.bp != nil }
