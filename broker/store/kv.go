package store

import (
	"bytes"
	"errors"
	"fmt"
)

// MaxKeySize is the longest key either engine accepts (bbolt's limit,
// enforced for both so that the engines stay interchangeable).
const MaxKeySize = 32768

// MaxValueSize is the largest value either engine accepts (bbolt's limit).
const MaxValueSize = 1<<31 - 2

var (
	// ErrClosed is returned by every call on a closed KV or Committer.
	ErrClosed = errors.New("store: closed")
	// ErrEmptyKey is returned for an op whose key is empty.
	ErrEmptyKey = errors.New("store: empty key")
	// ErrKeyTooLarge is returned for an op whose key is longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("store: key too large")
	// ErrValueTooLarge is returned for an op whose value is larger than MaxValueSize.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrBadRange is returned for a range delete whose End is not above Key.
	ErrBadRange = errors.New("store: range end not above its start")
)

// Op is one write in a batch: a put of Key=Value, or a delete of Key when
// Delete is set (Value is then ignored). A nil Value puts an empty value.
// A delete with End deletes every key in [Key, End) as one op: on Pebble
// one range tombstone, however many keys it covers, so that trimming a
// long history costs what one append does.
type Op struct {
	Key, Value []byte
	Delete     bool
	End        []byte // with Delete: the range's exclusive end
}

// KV is an ordered byte-key store. All methods are safe for concurrent use.
//
// Slices passed in (keys, values, ops) are not retained after the call
// returns. Slices handed out by Get belong to the caller; slices handed to a
// Scan callback do not (see Scan).
type KV interface {
	// Apply writes ops as one atomic batch, in order (a later op on the
	// same key wins): after a crash either all of them are there or none.
	// The batch is visible to readers when Apply returns.
	//
	// With sync, the batch is on disk (fsync) before Apply returns, and so
	// is every batch applied before it. Without sync, a crash (even of the
	// process alone, with Pebble) may lose the batch until a later synced
	// batch or Close makes it durable. Either way, what survives a crash
	// is a prefix of the batches in the order they were applied.
	//
	// An invalid op (empty or oversized key, oversized value, a range
	// whose End is not above its Key) fails the whole batch before
	// anything is written.
	Apply(ops []Op, sync bool) error

	// Scan calls fn for each key that starts with prefix and is >= start,
	// in ascending byte order, until fn returns false or the keys run out.
	// A nil start (or one below prefix) begins at the prefix's first key;
	// a nil prefix scans every key. Scan sees one consistent snapshot.
	//
	// fn must not retain key or value after it returns (copy what it
	// keeps) and must not modify them. It may call Get, but not Apply or
	// Close (bbolt can deadlock on a write inside a read). It should be
	// quick: the snapshot is held until Scan returns.
	Scan(prefix, start []byte, fn func(key, value []byte) bool) error

	// Get returns a copy of key's value and whether key exists.
	Get(key []byte) (value []byte, ok bool, err error)

	// Close releases the store; later calls return ErrClosed. Close waits
	// for running calls to finish.
	Close() error
}

// validate checks every op of a batch, so that a bad op fails the batch
// before anything is written, with the same error from every engine.
func validate(ops []Op) error {
	for i, op := range ops {
		switch {
		case len(op.Key) == 0:
			return fmt.Errorf("op %d: %w", i, ErrEmptyKey)
		case len(op.Key) > MaxKeySize:
			return fmt.Errorf("op %d: %w: %d bytes, at most %d", i, ErrKeyTooLarge, len(op.Key), MaxKeySize)
		case !op.Delete && len(op.Value) > MaxValueSize:
			return fmt.Errorf("op %d: %w: %d bytes, at most %d", i, ErrValueTooLarge, len(op.Value), MaxValueSize)
		case op.End != nil && (!op.Delete || bytes.Compare(op.End, op.Key) <= 0):
			return fmt.Errorf("op %d: %w", i, ErrBadRange)
		case len(op.End) > MaxKeySize:
			return fmt.Errorf("op %d: %w: range end of %d bytes, at most %d", i, ErrKeyTooLarge, len(op.End), MaxKeySize)
		}
	}
	return nil
}

// scanBounds returns the inclusive lower and exclusive upper bound of a
// Scan over prefix from start; a nil upper bound means no limit. empty
// reports that no key can match (start lies past the prefix's range).
func scanBounds(prefix, start []byte) (lower, upper []byte, empty bool) {
	lower = prefix
	if bytes.Compare(start, prefix) > 0 {
		lower = start
	}
	upper = prefixEnd(prefix)
	if upper != nil && bytes.Compare(lower, upper) >= 0 {
		return nil, nil, true
	}
	return lower, upper, false
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil when there is none (prefix empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
