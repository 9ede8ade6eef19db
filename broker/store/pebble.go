package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// pebbleKV is a KV on a Pebble LSM tree. Every batch goes to Pebble's
// write-ahead log; the log is fsynced only for batches applied with sync.
type pebbleKV struct {
	g  guard
	db *pebble.DB
}

var _ KV = (*pebbleKV)(nil)

// OpenPebble opens (creating if needed) a Pebble store in directory dir.
// Only one process may have it open at a time.
func OpenPebble(dir string) (KV, error) {
	cache := pebble.NewCache(32 << 20)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{
		// A new store needs no compatibility with older Pebble releases.
		FormatMajorVersion: pebble.FormatNewest,
		// Room for replaying recent history from memory rather than disk.
		Cache: cache,
		// A larger memtable means fewer, larger flushes under a steady
		// publish rate; the WAL keeps it durable.
		MemTableSize: 16 << 20,
		// Pebble's informational chatter (flushes, compactions) is not the
		// broker's to log; errors still are.
		Logger: quietLogger{},
		// The plain file system, not Pebble's default disk-health-checking
		// wrapper: that one only reports to event listeners (we set none)
		// and its goroutine outlives a failed Open.
		FS: vfs.Default,
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to open pebble store %s: %w", dir, err)
	}
	return &pebbleKV{db: db}, nil
}

func (s *pebbleKV) Apply(ops []Op, sync bool) error {
	if err := validate(ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.g.enter(); err != nil {
		return err
	}
	defer s.g.leave()
	b := s.db.NewBatch()
	defer b.Close()
	for _, op := range ops {
		var err error
		switch {
		case op.End != nil:
			err = b.DeleteRange(op.Key, op.End, nil)
		case op.Delete:
			err = b.Delete(op.Key, nil)
		default:
			err = b.Set(op.Key, op.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("failed to build batch: %w", err)
		}
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("failed to commit batch: %w", err)
	}
	return nil
}

func (s *pebbleKV) Scan(prefix, start []byte, fn func(key, value []byte) bool) error {
	if err := s.g.enter(); err != nil {
		return err
	}
	defer s.g.leave()
	lower, upper, empty := scanBounds(prefix, start)
	if empty {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("failed to open iterator: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("failed to read value of %q: %w", it.Key(), err)
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("failed to scan: %w", err)
	}
	return nil
}

func (s *pebbleKV) Get(key []byte) ([]byte, bool, error) {
	if err := s.g.enter(); err != nil {
		return nil, false, err
	}
	defer s.g.leave()
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("failed to get %q: %w", key, err)
	}
	v = bytes.Clone(v)
	if v == nil {
		v = []byte{}
	}
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("failed to release %q: %w", key, err)
	}
	return v, true, nil
}

func (s *pebbleKV) Close() error {
	if !s.g.close() {
		return ErrClosed
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("failed to close pebble store: %w", err)
	}
	return nil
}

// quietLogger drops Pebble's informational messages and passes errors on
// to Pebble's default logger (the standard library's log package).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }
