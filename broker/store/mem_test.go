package store

import (
	"bytes"
	"slices"
	"sync"
)

// memKV is the in-memory baseline of the benchmarks: the same KV contract
// with no disk and no fsync, so that an engine's figures can be read as a
// ratio against it. It passes the conformance suite's non-durable parts.
// Writes go to a map; the sorted list is rebuilt on the first Scan after a
// write, which suits the benchmarks (writes and scans come in separate
// phases).
type memKV struct {
	mu     sync.RWMutex
	m      map[string]*memEntry
	sorted []*memEntry // valid unless dirty
	dirty  bool
	closed bool
}

type memEntry struct{ key, value []byte }

var _ KV = (*memKV)(nil)

func openMem() *memKV { return &memKV{m: make(map[string]*memEntry)} }

func (s *memKV) Apply(ops []Op, _ bool) error {
	if err := validate(ops); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, op := range ops {
		if op.End != nil {
			for k := range s.m {
				if k >= string(op.Key) && k < string(op.End) {
					delete(s.m, k)
					s.dirty = true
				}
			}
			continue
		}
		if op.Delete {
			if _, ok := s.m[string(op.Key)]; ok {
				delete(s.m, string(op.Key))
				s.dirty = true
			}
			continue
		}
		v := append([]byte{}, op.Value...)
		if e, ok := s.m[string(op.Key)]; ok {
			e.value = v
			continue
		}
		s.m[string(op.Key)] = &memEntry{key: bytes.Clone(op.Key), value: v}
		s.dirty = true
	}
	return nil
}

// Scan holds the read lock throughout, which makes it a consistent
// snapshot.
func (s *memKV) Scan(prefix, start []byte, fn func(key, value []byte) bool) error {
	for {
		s.mu.RLock()
		if !s.dirty {
			break
		}
		s.mu.RUnlock()
		s.mu.Lock()
		if s.dirty {
			s.sorted = s.sorted[:0]
			for _, e := range s.m {
				s.sorted = append(s.sorted, e)
			}
			slices.SortFunc(s.sorted, func(a, b *memEntry) int { return bytes.Compare(a.key, b.key) })
			s.dirty = false
		}
		s.mu.Unlock()
	}
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	lower, upper, empty := scanBounds(prefix, start)
	if empty {
		return nil
	}
	i, _ := slices.BinarySearchFunc(s.sorted, lower, func(e *memEntry, k []byte) int { return bytes.Compare(e.key, k) })
	for ; i < len(s.sorted); i++ {
		e := s.sorted[i]
		if upper != nil && bytes.Compare(e.key, upper) >= 0 {
			break
		}
		if !fn(e.key, e.value) {
			break
		}
	}
	return nil
}

func (s *memKV) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	e, ok := s.m[string(key)]
	if !ok {
		return nil, false, nil
	}
	return append([]byte{}, e.value...), true, nil
}

func (s *memKV) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	return nil
}
