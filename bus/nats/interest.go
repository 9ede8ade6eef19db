package nats

import (
	"slices"
	"strings"

	"github.com/mercury-broker/mercury/broker"
)

// maxFeedFilters bounds the subject filters of a broker's feed. The
// server checks every pair of a consumer's filters for overlap when it
// creates one (and the feed's consumer is created again at each change of
// interest), so thousands would make each change take seconds. Past the
// bound the topics are cut to their first segments, as few as needed,
// each cut one standing for its subtree; when even one segment is too
// many the feed reads the whole stream.
const maxFeedFilters = 256

// interest is what a broker's subscribers or bus peers want: the messages
// of kind on topic (and below it, for KindPublish).
type interest struct {
	kind  broker.Kind
	topic broker.Topic
}

// reach says what a selection takes at one subject: the subject itself,
// the subjects below it, or both.
type reach struct{ exact, below bool }

// selection is the subjects a feed takes: all of the stream (whole), or
// those of its filters.
type selection struct {
	whole   bool
	at      map[string]reach // by subject
	filters []string         // the consumer's filters, sorted
}

// wholeStream selects everything.
var wholeStream = &selection{whole: true}

// selectionOf returns the selection of wants under the prefixes of p,
// widened to stay within limit filters.
func (p *Backplane) selectionOf(wants []interest, limit int) *selection {
	if len(wants) == 0 {
		return &selection{at: map[string]reach{}}
	}
	depth := 0
	for _, w := range wants {
		depth = max(depth, strings.Count(string(w.topic), "/"))
	}
	for ; depth > 0; depth-- {
		s := p.cutAt(wants, depth)
		if len(s.filters) <= limit {
			return s
		}
	}
	return wholeStream
}

// cutAt selects wants with their topics cut to depth segments.
func (p *Backplane) cutAt(wants []interest, depth int) *selection {
	at := make(map[string]reach)
	for _, w := range wants {
		prefix, below := p.pubPrefix, true
		if w.kind == broker.KindBus {
			prefix, below = p.busPrefix, false
		}
		topic := w.topic
		if segs := strings.SplitAfterN(string(topic), "/", depth+2); len(segs) > depth+1 {
			// Deeper than depth: its ancestor at depth stands for it.
			topic = broker.Topic(strings.TrimSuffix(strings.Join(segs[:depth+1], ""), "/"))
			r := at[subjectOf(prefix, topic)]
			r.below = true
			at[subjectOf(prefix, topic)] = r
			continue
		}
		s := subjectOf(prefix, topic)
		r := at[s]
		r.exact = true
		r.below = r.below || below
		at[s] = r
	}
	return selectionAt(at)
}

// selectionAt returns the selection of the subjects in at.
func selectionAt(at map[string]reach) *selection {
	// What lies under another subject's subtree is taken already: the
	// server refuses overlapping filters.
	for s := range at {
		if coveredAbove(at, s) {
			delete(at, s)
		}
	}
	sel := &selection{at: at}
	for s, r := range at {
		if r.exact {
			sel.filters = append(sel.filters, s)
		}
		if r.below {
			sel.filters = append(sel.filters, s+".>")
		}
	}
	slices.Sort(sel.filters)
	return sel
}

// coveredAbove reports whether a strict ancestor of subject s takes its
// subtree in at. The kind's prefix (two tokens) is never cut.
func coveredAbove(at map[string]reach, s string) bool {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] != '.' {
			continue
		}
		anc := s[:i]
		if strings.Count(anc, ".") < 2 {
			return false
		}
		if at[anc].below {
			return true
		}
	}
	return false
}

// covers reports whether sel takes every message of w.
func (sel *selection) covers(p *Backplane, w interest) bool {
	if sel.whole {
		return true
	}
	prefix, below := p.pubPrefix, true
	if w.kind == broker.KindBus {
		prefix, below = p.busPrefix, false
	}
	s := subjectOf(prefix, w.topic)
	if coveredAbove(sel.at, s) {
		return true
	}
	r := sel.at[s]
	return r.exact && (r.below || !below)
}

// merge returns a selection taking what sel and o take, widened to the
// whole stream past limit filters.
func (sel *selection) merge(o *selection, limit int) *selection {
	if sel.whole || o.whole {
		return wholeStream
	}
	at := make(map[string]reach, len(sel.at)+len(o.at))
	for _, m := range []map[string]reach{sel.at, o.at} {
		for s, r := range m {
			old := at[s]
			at[s] = reach{exact: old.exact || r.exact, below: old.below || r.below}
		}
	}
	out := selectionAt(at)
	if len(out.filters) > limit {
		return wholeStream
	}
	return out
}

// same reports whether sel and o take the same subjects.
func (sel *selection) same(o *selection) bool {
	return sel.whole == o.whole && slices.Equal(sel.filters, o.filters)
}
