package trie

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func matched(t *Tree[string], path string) []string {
	var out []string
	for _, level := range t.Match(path, nil) {
		out = append(out, level...)
	}
	slices.Sort(out)
	return out
}

func TestMatchByWholeSegments(t *testing.T) {
	var tr Tree[string]
	tr.Insert("/foo", "foo")
	tr.Insert("/foo/bar", "foo/bar")
	tr.Insert("/foobar", "foobar")
	tr.Insert("/fo", "fo")
	tr.Insert("/foo/bar/baz", "foo/bar/baz")

	cases := map[string][]string{
		"/foo":             {"foo"},
		"/foo/bar":         {"foo", "foo/bar"},
		"/foo/bar/baz":     {"foo", "foo/bar", "foo/bar/baz"},
		"/foo/bar/baz/qux": {"foo", "foo/bar", "foo/bar/baz"},
		"/foobar":          {"foobar"},
		"/fo":              {"fo"},
		"/f":               nil,
		"/other":           nil,
	}
	for path, want := range cases {
		if got := matched(&tr, path); !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestValuesIsExact(t *testing.T) {
	var tr Tree[string]
	tr.Insert("/a", "a")
	tr.Insert("/a/b", "ab")
	if got := tr.Values("/a/b"); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("Values(/a/b) = %v", got)
	}
	if got := tr.Values("/a/b/c"); got != nil {
		t.Errorf("Values(/a/b/c) = %v, want nothing", got)
	}
}

func TestRemovePrunesEmptyNodes(t *testing.T) {
	var tr Tree[int]
	tr.Insert("/a/b/c", 1)
	tr.Insert("/a/b/c", 2)
	tr.Insert("/a/x", 3)
	if n := tr.Nodes(); n != 4 {
		t.Fatalf("Nodes = %d, want 4", n)
	}
	if !tr.Remove("/a/b/c", 1) {
		t.Fatal("Remove(1) = false")
	}
	if tr.Remove("/a/b/c", 1) {
		t.Fatal("second Remove(1) = true")
	}
	if tr.Remove("/a/b", 2) {
		t.Fatal("Remove at the wrong path = true")
	}
	if n := tr.Nodes(); n != 4 {
		t.Fatalf("Nodes = %d after removing one of two values, want 4", n)
	}
	tr.Remove("/a/b/c", 2)
	if n := tr.Nodes(); n != 2 {
		t.Fatalf("Nodes = %d, want 2 (/a and /a/x)", n)
	}
	tr.Remove("/a/x", 3)
	if n, l := tr.Nodes(), tr.Len(); n != 0 || l != 0 {
		t.Fatalf("Nodes, Len = %d, %d after removing everything, want 0, 0", n, l)
	}
}

func TestRemoveKeepsNodesWithChildren(t *testing.T) {
	var tr Tree[int]
	tr.Insert("/a", 1)
	tr.Insert("/a/b", 2)
	tr.Remove("/a", 1)
	if got := matched2(&tr, "/a/b"); !slices.Equal(got, []int{2}) {
		t.Fatalf("after removing the parent, Match(/a/b) = %v", got)
	}
}

func matched2(t *Tree[int], path string) []int {
	var out []int
	for _, level := range t.Match(path, nil) {
		out = append(out, level...)
	}
	return out
}

func TestMatchedSliceSurvivesLaterChanges(t *testing.T) {
	var tr Tree[int]
	tr.Insert("/a", 1)
	levels := tr.Match("/a", nil)
	tr.Insert("/a", 2)
	tr.Remove("/a", 1)
	if !slices.Equal(levels[0], []int{1}) {
		t.Fatalf("a matched slice changed under its reader: %v", levels[0])
	}
}

func TestWalk(t *testing.T) {
	var tr Tree[int]
	tr.Insert("/a", 1)
	tr.Insert("/a/b", 2)
	tr.Insert("/a/b", 3)
	got := map[string]int{}
	tr.Walk(func(path string, values []int) { got[path] = len(values) })
	if len(got) != 2 || got["/a"] != 1 || got["/a/b"] != 2 {
		t.Fatalf("Walk = %v", got)
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	var tr Tree[int]
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				path := fmt.Sprintf("/t/%d/%d", w, i%50)
				tr.Insert(path, i)
				tr.Remove(path, i)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			var buf [8][]int
			for i := range 2000 {
				for _, level := range tr.Match(fmt.Sprintf("/t/%d/%d", i%4, i%50), buf[:0]) {
					_ = len(level)
				}
			}
		})
	}
	wg.Wait()
	if n := tr.Nodes(); n != 0 {
		t.Fatalf("Nodes = %d after balanced inserts and removes, want 0", n)
	}
}

// BenchmarkMatch matches one topic among 10,000 subscribed ones, from
// parallel readers.
func BenchmarkMatch(b *testing.B) {
	var tr Tree[int]
	paths := make([]string, 10000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/livesys/%d/cmd/%d", i/10, i%10)
		tr.Insert(paths[i], i)
	}
	tr.Insert("/livesys", -1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf [8][]int
		i := 0
		for pb.Next() {
			levels := tr.Match(paths[i%len(paths)], buf[:0])
			if len(levels) != 2 {
				b.Fatalf("matched %d levels", len(levels))
			}
			i++
		}
	})
}

func FuzzTree(f *testing.F) {
	f.Add("/a/b", "/a")
	f.Add("/a//b", "/a/b/c")
	f.Fuzz(func(t *testing.T, p1, p2 string) {
		var tr Tree[int]
		tr.Insert(p1, 1)
		tr.Insert(p2, 2)
		tr.Match(p1, nil)
		tr.Match(p2, nil)
		tr.Remove(p1, 1)
		tr.Remove(p2, 2)
		if tr.Nodes() != 0 || tr.Len() != 0 {
			t.Fatalf("tree not empty after removing both: nodes=%d len=%d", tr.Nodes(), tr.Len())
		}
	})
}

// Subscribing many connections to one topic must not copy the topic's
// whole subscriber slice each time: that is quadratic in time and in
// garbage (19,000 subscribers to one topic made 2.9 GB of it).
func TestInsertAtOnePathAllocatesAmortized(t *testing.T) {
	const n = 1000
	allocs := testing.AllocsPerRun(5, func() {
		var tr Tree[int]
		for i := range n {
			tr.Insert("/all", i)
		}
	})
	if allocs > n/10 {
		t.Fatalf("%d inserts at one path allocated %.0f times, want at most %d (geometric growth)", n, allocs, n/10)
	}
}

func TestAppendingToAHandedOutSliceLeavesTheTreeAlone(t *testing.T) {
	var tr Tree[int]
	for i := range 5 {
		tr.Insert("/a", i)
	}
	level := tr.Match("/a", nil)[0]
	_ = append(level, 99)
	_ = append(tr.Values("/a"), 98)
	tr.Walk(func(_ string, values []int) { _ = append(values, 97) })
	tr.Insert("/a", 5)
	if got := tr.Values("/a"); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("values = %v after appends to handed-out slices", got)
	}
	if !slices.Equal(level, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("a matched slice changed under its reader: %v", level)
	}
}

// Readers walk a topic's subscribers while others subscribe to it: run
// with -race, Insert's in-place append must never write what they read.
func TestReadersOfOnePathWhileInserting(t *testing.T) {
	var tr Tree[int]
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 5000 {
			tr.Insert("/all", i)
			if i%100 == 99 {
				tr.Remove("/all", i-50)
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			var buf [4][]int
			for range 2000 {
				for _, level := range tr.Match("/all", buf[:0]) {
					sum := 0
					for _, v := range level {
						sum += v
					}
					_ = sum
				}
			}
		})
	}
	wg.Wait()
	if got := len(tr.Values("/all")); got != 5000-50 {
		t.Fatalf("%d values, want %d", got, 5000-50)
	}
}
