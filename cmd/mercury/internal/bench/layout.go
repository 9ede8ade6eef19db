package bench

import (
	"fmt"
	"math"
	"strings"
)

// layout places subscribers on topics and says where publishers publish.
type layout struct {
	name      string
	subTopics []string // one per subscriber
	pubTopics []string // where messages are published, in turn
	// fanout[i] is how many subscribers a message to pubTopics[i] reaches.
	fanout []int
}

// Layout names.
const (
	layoutOne  = "one"  // every subscriber on one topic
	layoutEach = "each" // one topic per subscriber
	layoutTree = "tree" // a three-level hierarchy
)

// newLayout builds the topics of layout name for subs subscribers under
// root. hierarchical says whether a subscriber also receives what is
// published below its topic (Mercury) or only on it (the baseline,
// nchan).
func newLayout(name, root string, subs int, hierarchical bool) (*layout, error) {
	root = "/" + strings.Trim(root, "/")
	l := &layout{name: name, subTopics: make([]string, subs)}
	switch name {
	case layoutOne:
		for i := range l.subTopics {
			l.subTopics[i] = root
		}
		l.pubTopics = []string{root}
	case layoutEach:
		for i := range l.subTopics {
			l.subTopics[i] = fmt.Sprintf("%s/s%d", root, i)
		}
		l.pubTopics = l.subTopics
	case layoutTree:
		if !hierarchical {
			return nil, fmt.Errorf("layout %q needs a server with hierarchical topics", name)
		}
		l.subTopics, l.pubTopics = treeTopics(root, subs)
	default:
		return nil, fmt.Errorf("layout %q: want %s, %s or %s", name, layoutOne, layoutEach, layoutTree)
	}
	l.fanout = make([]int, len(l.pubTopics))
	for i, p := range l.pubTopics {
		for _, s := range l.subTopics {
			if s == p || hierarchical && strings.HasPrefix(p, s+"/") {
				l.fanout[i]++
			}
		}
	}
	return l, nil
}

// treeTopics places subscriber 0 on root, the next G (about √subs) on
// the groups root/gK, and the others on leaves root/gK/sN spread over the
// groups. Messages go to every leaf, and to groups that have no leaf, so
// one message reaches its leaf, its group and the root.
func treeTopics(root string, subs int) (subTopics, pubTopics []string) {
	groups := max(1, int(math.Sqrt(float64(subs))))
	subTopics = make([]string, subs)
	hasLeaf := make([]bool, groups)
	for i := range subTopics {
		switch j := i - 1; {
		case i == 0:
			subTopics[i] = root
		case j < groups:
			subTopics[i] = fmt.Sprintf("%s/g%d", root, j)
		default:
			g := j % groups
			subTopics[i] = fmt.Sprintf("%s/g%d/s%d", root, g, j)
			hasLeaf[g] = true
		}
	}
	for i, t := range subTopics {
		j := i - 1
		switch {
		case i == 0 && subs == 1:
			pubTopics = append(pubTopics, t)
		case i > 0 && j < groups && !hasLeaf[j]:
			pubTopics = append(pubTopics, t)
		case i > 0 && j >= groups:
			pubTopics = append(pubTopics, t)
		}
	}
	return subTopics, pubTopics
}

// publisherTopics returns the indexes of the publish topics publisher p
// of n sends to: every n-th topic, or one shared topic when there are
// more publishers than topics.
func (l *layout) publisherTopics(p, n int) []int {
	if n >= len(l.pubTopics) {
		return []int{p % len(l.pubTopics)}
	}
	var idx []int
	for i := p; i < len(l.pubTopics); i += n {
		idx = append(idx, i)
	}
	return idx
}
