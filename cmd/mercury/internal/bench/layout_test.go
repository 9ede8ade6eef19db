package bench

import (
	"slices"
	"testing"
)

func TestLayouts(t *testing.T) {
	for _, c := range []struct {
		name         string
		subs         int
		hierarchical bool
		pubTopics    int
		fanout       []int // of the first publish topics
		deliveries   int   // one message to every publish topic
	}{
		{layoutOne, 5, true, 1, []int{5}, 5},
		{layoutOne, 5, false, 1, []int{5}, 5},
		{layoutEach, 5, true, 5, []int{1, 1, 1, 1, 1}, 5},
		{layoutEach, 12, false, 12, []int{1, 1}, 12},
		// 10 subscribers: the root, 3 groups, 6 leaves; a leaf message
		// reaches the leaf, its group and the root.
		{layoutTree, 10, true, 6, []int{3, 3, 3, 3, 3, 3}, 18},
		{layoutTree, 2, true, 1, []int{2}, 2}, // root and one group
		{layoutTree, 1, true, 1, []int{1}, 1},
	} {
		l, err := newLayout(c.name, "/bench", c.subs, c.hierarchical)
		if err != nil {
			t.Fatalf("%s/%d: %v", c.name, c.subs, err)
		}
		if len(l.subTopics) != c.subs || len(l.pubTopics) != c.pubTopics {
			t.Fatalf("%s/%d: %d subscriber topics, %d publish topics: %v %v", c.name, c.subs, len(l.subTopics), len(l.pubTopics), l.subTopics, l.pubTopics)
		}
		if !slices.Equal(l.fanout[:len(c.fanout)], c.fanout) {
			t.Errorf("%s/%d: fanout %v, want %v", c.name, c.subs, l.fanout, c.fanout)
		}
		sum := 0
		for _, f := range l.fanout {
			sum += f
		}
		if sum != c.deliveries {
			t.Errorf("%s/%d: a message to each publish topic makes %d deliveries, want %d", c.name, c.subs, sum, c.deliveries)
		}
	}
	if _, err := newLayout(layoutTree, "/bench", 10, false); err == nil {
		t.Error("a tree layout on a server without hierarchy was accepted")
	}
	if _, err := newLayout("star", "/bench", 10, true); err == nil {
		t.Error("an unknown layout was accepted")
	}
}

// TestTreeReachesEverySubscriber: warm-up messages go to the publish
// topics, so every subscriber must be reached by one.
func TestTreeReachesEverySubscriber(t *testing.T) {
	for subs := 1; subs < 200; subs++ {
		l, err := newLayout(layoutTree, "/bench", subs, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.subTopics {
			reached := false
			for _, p := range l.pubTopics {
				if p == s || len(p) > len(s) && p[:len(s)+1] == s+"/" {
					reached = true
				}
			}
			if !reached {
				t.Fatalf("%d subscribers: %s receives nothing from %v", subs, s, l.pubTopics)
			}
		}
	}
}

func TestPublisherTopics(t *testing.T) {
	l, _ := newLayout(layoutEach, "/b", 5, true)
	got := [][]int{l.publisherTopics(0, 2), l.publisherTopics(1, 2)}
	if !slices.Equal(got[0], []int{0, 2, 4}) || !slices.Equal(got[1], []int{1, 3}) {
		t.Errorf("2 publishers over 5 topics: %v", got)
	}
	one, _ := newLayout(layoutOne, "/b", 5, true)
	for p := range 3 {
		if got := one.publisherTopics(p, 3); !slices.Equal(got, []int{0}) {
			t.Errorf("publisher %d of 3 on one topic: %v", p, got)
		}
	}
}
