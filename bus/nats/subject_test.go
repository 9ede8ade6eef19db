package nats

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mercury-broker/mercury/broker"
)

func TestSubjectMapping(t *testing.T) {
	for _, tc := range []struct{ topic, subject string }{
		{"/a", "p.a"},
		{"/livesys/42/cmd", "p.livesys.42.cmd"},
		{"/a.b/c", "p.a%2Eb.c"},
		{"/*/>", "p.%2A.%3E"},
		{"/100%/x y", "p.100%25.x%20y"},
		{"/été", "p.%C3%A9t%C3%A9"},
	} {
		topic := broker.Topic(tc.topic)
		if got := subjectOf("p", topic); got != tc.subject {
			t.Errorf("subjectOf(%q) = %q, want %q", tc.topic, got, tc.subject)
		}
		back, err := topicOf("p", tc.subject)
		if err != nil || back != topic {
			t.Errorf("topicOf(%q) = %q, %v; want %q", tc.subject, back, err, tc.topic)
		}
		if !server.IsValidLiteralSubject(tc.subject) {
			t.Errorf("%q is not a valid literal NATS subject", tc.subject)
		}
	}
	for _, bad := range []string{"q.a", "p.", "p.%2", "p.%zz", "p.a..b"} {
		if _, err := topicOf("p", bad); err == nil {
			t.Errorf("topicOf(%q): no error", bad)
		}
	}
}

// FuzzSubject checks the mapping is one to one, never makes a wildcard,
// and that a topic's filter selects exactly the topics below it.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"/a/b", "/a.b/*", "/ü/>/%41", "/a b"} {
		f.Add(s, "/a")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, err := broker.ParseTopic(a)
		if err != nil {
			return
		}
		tb, err := broker.ParseTopic(b)
		if err != nil {
			return
		}
		sa := subjectOf("p.m", ta)
		if !server.IsValidLiteralSubject(sa) {
			t.Fatalf("%q: subject %q is not literal", ta, sa)
		}
		back, err := topicOf("p.m", sa)
		if err != nil || back != ta {
			t.Fatalf("%q: round trip gave %q, %v", ta, back, err)
		}
		matched := false
		for _, filter := range filtersUnder("p.m", tb) {
			matched = matched || server.SubjectMatchesFilter(sa, filter)
		}
		if matched != ta.Under(tb) {
			t.Fatalf("%q under %q: filter says %v, topics say %v", ta, tb, matched, ta.Under(tb))
		}
		if (subjectOf("p.m", tb) == sa) != (ta == tb) {
			t.Fatalf("%q and %q map to the same subject", ta, tb)
		}
	})
}
