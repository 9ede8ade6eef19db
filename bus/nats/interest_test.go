package nats

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

func testBackplane() *Backplane { return &Backplane{pubPrefix: "mercury.m", busPrefix: "mercury.b"} }

// TestSelectionOf: a subscription takes its topic and its subtree, a bus
// peer its topic only, nothing overlaps, and too many topics are cut to
// their first segments, then to the whole stream.
func TestSelectionOf(t *testing.T) {
	p := testBackplane()
	pub := func(t string) interest { return interest{broker.KindPublish, broker.Topic(t)} }
	bus := func(t string) interest { return interest{broker.KindBus, broker.Topic(t)} }
	wants := []interest{pub("/a/b"), pub("/a/b/c"), pub("/a.x/y"), bus("/a/b"), bus("/r"), pub("/a/bc")}
	sel := p.selectionOf(wants, 100)
	want := []string{"mercury.b.a.b", "mercury.b.r", "mercury.m.a%2Ex.y", "mercury.m.a%2Ex.y.>",
		"mercury.m.a.b", "mercury.m.a.b.>", "mercury.m.a.bc", "mercury.m.a.bc.>"}
	if !slices.Equal(sel.filters, want) {
		t.Fatalf("filters %q, want %q", sel.filters, want)
	}
	for _, w := range wants {
		if !sel.covers(p, w) {
			t.Errorf("%v not covered", w)
		}
	}
	for _, w := range []interest{pub("/a"), pub("/b"), bus("/a/b/c"), bus("/a"), pub("/r")} {
		if sel.covers(p, w) {
			t.Errorf("%v covered", w)
		}
	}
	if !sel.covers(p, pub("/a/b/zz")) {
		t.Error("/a/b/zz is under /a/b")
	}

	// 30 groups of 100 topics: cut to the groups.
	var many []interest
	for g := range 30 {
		for i := range 100 {
			many = append(many, pub(fmt.Sprintf("/g%d/t%d", g, i)))
		}
	}
	many = append(many, bus("/g1/room"), bus("/solo"))
	sel = p.selectionOf(many, maxFeedFilters)
	if sel.whole || len(sel.filters) != 32 {
		t.Fatalf("%d filters (whole %v), want the 30 groups' subtrees and 2 bus rooms: %q", len(sel.filters), sel.whole, sel.filters)
	}
	for _, w := range many {
		if !sel.covers(p, w) {
			t.Fatalf("%v not covered after the cut", w)
		}
	}
	if sel.covers(p, pub("/g1")) || sel.covers(p, pub("/other/x")) {
		t.Fatal("the cut took more than the groups' subtrees")
	}
	// Flat topics past the bound: the whole stream.
	var flat []interest
	for i := range maxFeedFilters {
		flat = append(flat, pub(fmt.Sprintf("/t%d", i)))
	}
	if sel = p.selectionOf(flat, maxFeedFilters); !sel.whole {
		t.Fatalf("%d flat topics: %d filters, want the whole stream", len(flat), len(sel.filters))
	}
	if sel = p.selectionOf(flat[:maxFeedFilters/2], maxFeedFilters); sel.whole || len(sel.filters) != maxFeedFilters {
		t.Fatalf("%d flat topics: %d filters (whole %v)", maxFeedFilters/2, len(sel.filters), sel.whole)
	}
	if m := p.selectionOf(wants[:2], 100).merge(p.selectionOf(wants[2:], 100), 100); !m.same(p.selectionOf(wants, 100)) {
		t.Fatalf("merged %q", m.filters)
	}
}
