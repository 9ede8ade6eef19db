package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// Durable is the broker's Store on a KV: messages of durable buses,
// queued messages and dead letters, the sequence lease.
//
// Keys:
//
//	s                              the sequence lease (8 bytes, big-endian)
//	e                              the epoch of the sequence numbers
//	m\x00<bus>\x00<seq>            a message of a durable bus
//	t\x00<bus>                     the highest seq trimmed from that bus
//	q\x00<queue>\x00<seq>          a queued message or dead letter
//
// <seq> is 8 bytes big-endian, so a bus's messages and a queue's records
// scan in sequence order. Topics never contain a NUL byte.
type Durable struct {
	kv     KV
	commit *Committer

	// trimMu orders a bus's appends and trims as they join a group, so
	// that a trim deletes every message appended before it and no message
	// it covers is stored after it.
	trimMu  sync.Mutex
	trimmed map[broker.Topic]uint64 // per bus, the highest seq trimmed
}

var _ broker.Store = (*Durable)(nil)

// OpenDurable opens (creating if needed) the store in dir.
func OpenDurable(dir string) (*Durable, error) {
	kv, err := Open(dir)
	if err != nil {
		return nil, err
	}
	d, err := NewDurable(kv)
	if err != nil {
		kv.Close()
		return nil, err
	}
	return d, nil
}

// NewDurable returns the store on kv, which Close closes. It deletes
// once more what each trim mark covers: a trim whose group failed to
// commit left its messages.
func NewDurable(kv KV) (*Durable, error) {
	d := &Durable{kv: kv}
	trims, err := d.readTrims()
	if err != nil {
		return nil, fmt.Errorf("failed to read trim marks: %w", err)
	}
	var ops []Op
	for bus, upTo := range trims {
		if upTo > 0 {
			ops = append(ops, trimRange(bus, 0, upTo))
		}
	}
	if err := kv.Apply(ops, false); err != nil {
		return nil, fmt.Errorf("failed to trim history: %w", err)
	}
	d.trimmed = trims
	d.commit = NewCommitter(kv)
	return d, nil
}

// OnSync makes f observe every synced write (Committer.OnSync).
func (d *Durable) OnSync(f func(took time.Duration, commits int)) { d.commit.OnSync(f) }

// Ready reports whether the store answers: a read of the sequence lease.
func (d *Durable) Ready() error {
	if _, _, err := d.kv.Get(leaseKey); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Close stops group commit and closes the KV.
func (d *Durable) Close() error {
	err := d.commit.Close()
	if kerr := d.kv.Close(); err == nil {
		err = kerr
	}
	return err
}

var (
	leaseKey    = []byte("s")
	epochKey    = []byte("e")
	msgPrefix   = []byte("m\x00")
	trimPrefix  = []byte("t\x00")
	queuePrefix = []byte("q\x00")
)

// ErrCorrupt is returned for a record that does not decode.
var ErrCorrupt = errors.New("store: corrupt record")

func topicKey(prefix []byte, t broker.Topic, seq uint64, withSeq bool) []byte {
	k := make([]byte, 0, len(prefix)+len(t)+9)
	k = append(append(append(k, prefix...), t...), 0)
	if withSeq {
		k = binary.BigEndian.AppendUint64(k, seq)
	}
	return k
}

// splitTopicKey returns the topic and seq of a key made by topicKey.
func splitTopicKey(prefix, key []byte) (broker.Topic, uint64, error) {
	if len(key) < len(prefix)+10 || key[len(key)-9] != 0 {
		return "", 0, fmt.Errorf("%w: key %q", ErrCorrupt, key)
	}
	return broker.Topic(key[len(prefix) : len(key)-9]), binary.BigEndian.Uint64(key[len(key)-8:]), nil
}

// Record encoding: a version byte, flags, then fields. A field added
// later has a flag saying it is there, so that older records still read.
const (
	recordVersion = 1
	flagBinary    = 1 << 0
	flagDead      = 1 << 1
	flagNotBefore = 1 << 2 // a not-before time follows the died time
)

func encodeRecord(r broker.QueuedMessage) []byte {
	m := r.Message
	b := make([]byte, 0, 40+len(m.Topic)+len(r.LastError)+len(m.Payload))
	var flags byte
	if m.Binary {
		flags |= flagBinary
	}
	if r.Dead {
		flags |= flagDead
	}
	if !r.NotBefore.IsZero() {
		flags |= flagNotBefore
	}
	b = append(b, recordVersion, flags)
	b = binary.AppendVarint(b, m.Time.UnixNano())
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = binary.AppendVarint(b, r.Died.UnixNano())
	if !r.NotBefore.IsZero() {
		b = binary.AppendVarint(b, r.NotBefore.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.AppendUvarint(b, uint64(len(r.LastError)))
	b = append(b, r.LastError...)
	return append(b, m.Payload...)
}

func decodeRecord(seq uint64, b []byte) (broker.QueuedMessage, error) {
	var r broker.QueuedMessage
	bad := func(what string) (broker.QueuedMessage, error) {
		return r, fmt.Errorf("%w: message %d: %s", ErrCorrupt, seq, what)
	}
	if len(b) < 2 || b[0] != recordVersion {
		return bad("unknown version")
	}
	flags := b[1]
	b = b[2:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return bad("time")
	}
	b = b[n:]
	attempts, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("attempts")
	}
	b = b[n:]
	died, n := binary.Varint(b)
	if n <= 0 {
		return bad("died")
	}
	b = b[n:]
	var notBefore int64
	if flags&flagNotBefore != 0 {
		if notBefore, n = binary.Varint(b); n <= 0 {
			return bad("not before")
		}
		b = b[n:]
	}
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, false
		}
		f := b[n : n+int(l)]
		b = b[n+int(l):]
		return f, true
	}
	topic, ok := field()
	if !ok {
		return bad("topic")
	}
	lastError, ok := field()
	if !ok {
		return bad("last error")
	}
	r.Message = &broker.Message{
		Topic: broker.Topic(topic), Seq: seq, Time: time.Unix(0, at).UTC(),
		Binary: flags&flagBinary != 0, Payload: append([]byte(nil), b...),
	}
	r.Attempts, r.LastError, r.Dead = int(attempts), string(lastError), flags&flagDead != 0
	if r.Dead {
		r.Died = time.Unix(0, died).UTC()
	}
	if flags&flagNotBefore != 0 {
		r.NotBefore = time.Unix(0, notBefore).UTC()
	}
	return r, nil
}

// AppendMessage stores m under bus, on disk before it returns. A message
// already trimmed (a small history evicted it before it got here) is not
// stored; AppendMessage then waits until the trim is on disk.
func (d *Durable) AppendMessage(bus broker.Topic, m *broker.Message) error {
	d.trimMu.Lock()
	ops := []Op{{Key: topicKey(msgPrefix, bus, m.Seq, true), Value: encodeRecord(broker.QueuedMessage{Message: m})}}
	if trimmed := d.trimmed[bus]; m.Seq <= trimmed {
		ops = []Op{trimMark(bus, trimmed)}
	}
	done, err := d.commit.enqueue(ops)
	d.trimMu.Unlock()
	if err != nil {
		return err
	}
	return <-done
}

// TrimMessages deletes bus's messages up to upTo and remembers upTo. It
// costs what an append does: one range delete from the previous trim,
// without a read, joining the next group without waiting for it. If that
// group fails, the messages stay until the store is opened again.
func (d *Durable) TrimMessages(bus broker.Topic, upTo uint64) error {
	d.trimMu.Lock()
	defer d.trimMu.Unlock()
	from := d.trimmed[bus]
	if upTo <= from {
		return nil
	}
	if _, err := d.commit.enqueue([]Op{trimRange(bus, from, upTo), trimMark(bus, upTo)}); err != nil {
		return err
	}
	d.trimmed[bus] = upTo
	return nil
}

// trimRange deletes bus's messages with after < Seq <= upTo.
func trimRange(bus broker.Topic, after, upTo uint64) Op {
	end := prefixEnd(topicKey(msgPrefix, bus, 0, false))
	if upTo < math.MaxUint64 {
		end = topicKey(msgPrefix, bus, upTo+1, true)
	}
	return Op{Key: topicKey(msgPrefix, bus, after+1, true), End: end, Delete: true}
}

func trimMark(bus broker.Topic, upTo uint64) Op {
	return Op{Key: append(append([]byte(nil), trimPrefix...), bus...), Value: binary.BigEndian.AppendUint64(nil, upTo)}
}

// LoadMessages calls fn for every stored message, bus by bus, in order.
func (d *Durable) LoadMessages(fn func(bus broker.Topic, m *broker.Message) error) error {
	var ferr error
	err := d.kv.Scan(msgPrefix, nil, func(key, value []byte) bool {
		var bus broker.Topic
		var seq uint64
		if bus, seq, ferr = splitTopicKey(msgPrefix, key); ferr != nil {
			return false
		}
		var r broker.QueuedMessage
		if r, ferr = decodeRecord(seq, value); ferr != nil {
			return false
		}
		ferr = fn(bus, r.Message)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// LoadTrims returns the trim marks of every bus: those read when the
// store was opened, raised by every trim since.
func (d *Durable) LoadTrims() (map[broker.Topic]uint64, error) {
	d.trimMu.Lock()
	defer d.trimMu.Unlock()
	return maps.Clone(d.trimmed), nil
}

// readTrims reads the trim marks of every bus from the KV.
func (d *Durable) readTrims() (map[broker.Topic]uint64, error) {
	trims := map[broker.Topic]uint64{}
	var ferr error
	err := d.kv.Scan(trimPrefix, nil, func(key, value []byte) bool {
		if len(value) != 8 {
			ferr = fmt.Errorf("%w: trim mark %q", ErrCorrupt, key)
			return false
		}
		trims[broker.Topic(key[len(trimPrefix):])] = binary.BigEndian.Uint64(value)
		return true
	})
	if err != nil {
		return nil, err
	}
	return trims, ferr
}

// PutQueued stores a queued message or dead letter.
func (d *Durable) PutQueued(queue broker.Topic, r broker.QueuedMessage, sync bool) error {
	ops := []Op{{Key: topicKey(queuePrefix, queue, r.Message.Seq, true), Value: encodeRecord(r)}}
	if sync {
		return d.commit.Commit(ops)
	}
	return d.kv.Apply(ops, false)
}

// DeleteQueued deletes one queued message or dead letter.
func (d *Durable) DeleteQueued(queue broker.Topic, id uint64) error {
	return d.kv.Apply([]Op{{Key: topicKey(queuePrefix, queue, id, true), Delete: true}}, false)
}

// TakeQueued deletes queued messages, on disk before it returns.
func (d *Durable) TakeQueued(queue broker.Topic, ids []uint64) error {
	ops := make([]Op, len(ids))
	for i, id := range ids {
		ops[i] = Op{Key: topicKey(queuePrefix, queue, id, true), Delete: true}
	}
	return d.commit.Commit(ops)
}

// DeleteQueue deletes queue's records with Seq <= upTo.
func (d *Durable) DeleteQueue(queue broker.Topic, upTo uint64) error {
	end := prefixEnd(topicKey(queuePrefix, queue, 0, false))
	if upTo < math.MaxUint64 {
		end = topicKey(queuePrefix, queue, upTo+1, true)
	}
	return d.kv.Apply([]Op{{Key: topicKey(queuePrefix, queue, 0, true), End: end, Delete: true}}, false)
}

// LoadQueued calls fn for every queued message and dead letter.
func (d *Durable) LoadQueued(fn func(queue broker.Topic, r broker.QueuedMessage) error) error {
	var ferr error
	err := d.kv.Scan(queuePrefix, nil, func(key, value []byte) bool {
		var queue broker.Topic
		var seq uint64
		if queue, seq, ferr = splitTopicKey(queuePrefix, key); ferr != nil {
			return false
		}
		var r broker.QueuedMessage
		if r, ferr = decodeRecord(seq, value); ferr != nil {
			return false
		}
		ferr = fn(queue, r)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// LoadSeq returns the sequence lease, 0 for a new store.
func (d *Durable) LoadSeq() (uint64, error) {
	v, ok, err := d.kv.Get(leaseKey)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: sequence lease", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// SaveSeq raises the sequence lease, on disk before it returns.
func (d *Durable) SaveSeq(seq uint64) error {
	return d.commit.Commit([]Op{{Key: leaseKey, Value: binary.BigEndian.AppendUint64(nil, seq)}})
}

// LoadEpoch returns the epoch of the sequence numbers, "" for a new store.
func (d *Durable) LoadEpoch() (string, error) {
	v, _, err := d.kv.Get(epochKey)
	return string(v), err
}

// SaveEpoch keeps the epoch, on disk before it returns.
func (d *Durable) SaveEpoch(epoch string) error {
	return d.commit.Commit([]Op{{Key: epochKey, Value: []byte(epoch)}})
}
