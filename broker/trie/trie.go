// Package trie is the topic tree at the heart of the broker: values (the
// subscribers) hang on slash-separated paths, and a match on a path yields
// the values of the path and of every ancestor, by whole segments.
//
// Reads take a shared lock and never allocate. A slice handed out by
// Match stays valid and unchanged after the lock is released: Insert only
// appends past the length of every slice handed out (whose capacity is
// cut to its length, so a caller's append copies), and Remove copies the
// one value slice it changes.
package trie

import (
	"strings"
	"sync"
)

// Tree maps paths such as "/a/b/c" to sets of values. The zero value is
// ready to use. A Tree is safe for concurrent use.
type Tree[V comparable] struct {
	mu    sync.RWMutex
	root  node[V]
	nodes int // nodes below the root
	count int // values in the tree
}

type node[V comparable] struct {
	children map[string]*node[V]
	values   []V // appended to in place, copied on removal; handed out capped
}

// next splits the first segment off path, skipping its leading slash.
func next(path string) (seg, rest string) {
	path = strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i:]
	}
	return path, ""
}

// Insert adds v at path. Adding a value already present at path adds it
// again; Remove removes one occurrence.
func (t *Tree[V]) Insert(path string, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest = next(rest)
		child := n.children[seg]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*node[V])
			}
			child = &node[V]{}
			n.children[seg] = child
			t.nodes++
		}
		n = child
	}
	// Appending in place writes only past the length of any slice a
	// reader holds, and grows the array geometrically: subscribing N
	// connections to one topic costs O(N), not the O(N²) copies (and
	// garbage) of copying the whole slice on every insert.
	n.values = append(n.values, v)
	t.count++
}

// Remove removes one occurrence of v at path and prunes the nodes left
// empty. It reports whether v was there.
func (t *Tree[V]) Remove(path string, v V) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The walk is at most as deep as the topic depth limit; a small stack
	// array keeps it free of allocations.
	var stackBuf [32]*node[V]
	var segBuf [32]string
	stack, segs := stackBuf[:0], segBuf[:0]
	n := &t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest = next(rest)
		stack, segs = append(stack, n), append(segs, seg)
		n = n.children[seg]
		if n == nil {
			return false
		}
	}
	i := indexOf(n.values, v)
	if i < 0 {
		return false
	}
	if len(n.values) == 1 {
		n.values = nil
	} else {
		values := make([]V, 0, len(n.values)-1)
		values = append(values, n.values[:i]...)
		n.values = append(values, n.values[i+1:]...)
	}
	t.count--
	// Prune from the leaf up while nodes hold nothing.
	for j := len(stack) - 1; j >= 0 && len(n.values) == 0 && len(n.children) == 0; j-- {
		parent := stack[j]
		delete(parent.children, segs[j])
		if len(parent.children) == 0 {
			parent.children = nil
		}
		t.nodes--
		n = parent
	}
	return true
}

func indexOf[V comparable](values []V, v V) int {
	for i, x := range values {
		if x == v {
			return i
		}
	}
	return -1
}

// Match appends to dst the value slices of path and of each of its
// ancestors that hold values, shallowest first, and returns dst. The
// slices must not be modified. With a dst of enough capacity Match does
// not allocate.
func (t *Tree[V]) Match(path string, dst [][]V) [][]V {
	t.mu.RLock()
	n := &t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest = next(rest)
		n = n.children[seg]
		if n == nil {
			break
		}
		if len(n.values) > 0 {
			dst = append(dst, capped(n.values))
		}
	}
	t.mu.RUnlock()
	return dst
}

// Values returns the values at exactly path; the slice must not be
// modified.
func (t *Tree[V]) Values(path string) []V {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := &t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest = next(rest)
		n = n.children[seg]
		if n == nil {
			return nil
		}
	}
	return capped(n.values)
}

// capped returns values with no capacity past its length, so that a
// caller's append copies instead of writing where Insert appends.
func capped[V any](values []V) []V { return values[:len(values):len(values)] }

// Walk calls fn for every path holding values, in no particular order,
// while holding the read lock: fn must not call back into the tree.
func (t *Tree[V]) Walk(fn func(path string, values []V)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	walk(&t.root, "", fn)
}

func walk[V comparable](n *node[V], path string, fn func(string, []V)) {
	if len(n.values) > 0 {
		fn(path, capped(n.values))
	}
	for seg, child := range n.children {
		walk(child, path+"/"+seg, fn)
	}
}

// Len returns the number of values in the tree.
func (t *Tree[V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// Nodes returns the number of nodes below the root: zero once every value
// has been removed.
func (t *Tree[V]) Nodes() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.nodes
}

// Below appends to dst the values at path and at every path below it, by
// whole segments ("/" is above everything), and returns it.
func (t *Tree[V]) Below(path string, dst []V) []V {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if path == "/" {
		return collect(&t.root, dst)
	}
	n := &t.root
	for rest := path; rest != ""; {
		var seg string
		seg, rest = next(rest)
		n = n.children[seg]
		if n == nil {
			return dst
		}
	}
	return collect(n, dst)
}

func collect[V comparable](n *node[V], dst []V) []V {
	dst = append(dst, n.values...)
	for _, child := range n.children {
		dst = collect(child, dst)
	}
	return dst
}
