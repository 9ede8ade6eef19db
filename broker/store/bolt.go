package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltBucket is the one bucket that holds every key.
var boltBucket = []byte("kv")

// boltFillPercent is how full bbolt fills a page before splitting it.
const boltFillPercent = 0.9

// boltKV is a KV on a bbolt B+tree file. bbolt has no safe way to skip the
// fsync of a commit (its NoSync mode can corrupt the file on power loss),
// so every batch is synced, whatever Apply's sync says.
type boltKV struct {
	g  guard
	db *bolt.DB
}

var _ KV = (*boltKV)(nil)

// OpenBolt opens (creating if needed) a bbolt store in file path. Only one
// process may have it open at a time; a second one fails after a second.
func OpenBolt(path string) (KV, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// Fail rather than hang when another process holds the file.
		Timeout: time.Second,
		// Commits write no freelist (less to write per fsync); Open
		// rebuilds it by scanning the file instead.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// A large address-space reservation up front, so that readers
		// (replays) do not block writers while the map grows. It costs
		// no memory and the file still grows only as data arrives.
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open bbolt store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to create bucket in %s: %w", path, err)
	}
	return &boltKV{db: db}, nil
}

func (s *boltKV) Apply(ops []Op, _ bool) error {
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
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		// Mercury's keys mostly grow (sequence numbers): fill pages
		// fuller than bbolt's default half, which suits random inserts.
		b.FillPercent = boltFillPercent
		for _, op := range ops {
			var err error
			switch {
			case op.End != nil:
				err = boltDeleteRange(b, op.Key, op.End)
			case op.Delete:
				err = b.Delete(op.Key)
			default:
				v := op.Value
				if v == nil {
					v = []byte{}
				}
				err = b.Put(op.Key, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to commit batch: %w", err)
	}
	return nil
}

// boltDeleteRange deletes every key of b in [from, to).
func boltDeleteRange(b *bolt.Bucket, from, to []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(from); k != nil && bytes.Compare(k, to) < 0; k, _ = c.Seek(from) {
		// Seek again after each delete: a bbolt cursor may skip the key
		// after the one Delete removed.
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func (s *boltKV) Scan(prefix, start []byte, fn func(key, value []byte) bool) error {
	if err := s.g.enter(); err != nil {
		return err
	}
	defer s.g.leave()
	lower, upper, empty := scanBounds(prefix, start)
	if empty {
		return nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		var k, v []byte
		if len(lower) == 0 {
			k, v = c.First()
		} else {
			k, v = c.Seek(lower)
		}
		for ; k != nil; k, v = c.Next() {
			if upper != nil && bytes.Compare(k, upper) >= 0 {
				break
			}
			if !fn(k, v) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to scan: %w", err)
	}
	return nil
}

func (s *boltKV) Get(key []byte) ([]byte, bool, error) {
	if err := s.g.enter(); err != nil {
		return nil, false, err
	}
	defer s.g.leave()
	var v []byte
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(boltBucket).Get(key); got != nil {
			v, ok = bytes.Clone(got), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("failed to get %q: %w", key, err)
	}
	if ok && v == nil {
		v = []byte{}
	}
	return v, ok, nil
}

func (s *boltKV) Close() error {
	if !s.g.close() {
		return ErrClosed
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("failed to close bbolt store: %w", err)
	}
	return nil
}
