package broker

import "time"

// Store keeps what durable buses must not lose: their messages (for
// replay after a restart), their queued messages and dead letters, and the
// sequence lease that keeps sequence numbers from ever going back. The
// embedded implementation is in broker/store; the broker never imports it.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// AppendMessage stores m, published under bus, on disk before it
	// returns; concurrent callers share fsyncs.
	AppendMessage(bus Topic, m *Message) error
	// TrimMessages deletes bus's messages with Seq <= upTo, and remembers
	// upTo for LoadTrims. It need not wait for the disk: the trim may
	// become durable with a later write, and a message of bus with
	// Seq <= upTo appended afterwards need not be stored.
	TrimMessages(bus Topic, upTo uint64) error
	// LoadMessages calls fn for every stored message, bus by bus, in
	// sequence order.
	LoadMessages(fn func(bus Topic, m *Message) error) error
	// LoadTrims returns, per bus, the highest upTo TrimMessages was given.
	LoadTrims() (map[Topic]uint64, error)

	// PutQueued stores (or replaces) a queued message or dead letter,
	// keyed by queue and Message.Seq; with sync it is on disk before
	// PutQueued returns.
	PutQueued(queue Topic, r QueuedMessage, sync bool) error
	// DeleteQueued deletes one queued message or dead letter. It need not
	// wait for the disk: a crash may undo it.
	DeleteQueued(queue Topic, id uint64) error
	// TakeQueued deletes queued messages, on disk before it returns;
	// concurrent callers share fsyncs. A raw puller's messages are taken
	// so before they are written to it: a crash cannot bring them back.
	TakeQueued(queue Topic, ids []uint64) error
	// DeleteQueue deletes everything stored for queue with Seq <= upTo:
	// what the queue held when it expired, and nothing pushed after.
	DeleteQueue(queue Topic, upTo uint64) error
	// LoadQueued calls fn for every stored queued message and dead letter,
	// queue by queue, in sequence order.
	LoadQueued(fn func(queue Topic, r QueuedMessage) error) error

	// LoadSeq returns the sequence lease: no sequence number above it was
	// ever given out. SaveSeq raises it, on disk before it returns.
	LoadSeq() (uint64, error)
	SaveSeq(seq uint64) error
	// LoadEpoch returns the epoch of the store's sequence numbers, "" for
	// a new store; SaveEpoch keeps it, on disk before it returns.
	LoadEpoch() (string, error)
	SaveEpoch(epoch string) error
}

// QueuedMessage is a stored queued message or dead letter.
type QueuedMessage struct {
	Message   *Message
	Attempts  int
	LastError string
	Dead      bool
	Died      time.Time
	NotBefore time.Time // nacked with a delay: not delivered before this
}

func queuedRecord(dl *DeadLetter) QueuedMessage {
	return QueuedMessage{Message: dl.Message, Attempts: dl.Attempts, LastError: dl.LastError, Dead: true, Died: dl.Died}
}

// seqLeaseBlock is how far the sequence lease runs ahead: one synced
// write per this many messages.
const seqLeaseBlock = 1 << 16

// storeErr logs a failed store write the caller cannot report to anyone.
func (b *Broker) storeErr(what string, err error) {
	if err != nil {
		b.opts.Logger.Error("store: failed to "+what, "err", err)
	}
}
