package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

func mustSpec(t testing.TB, v map[string]any) Spec {
	t.Helper()
	s, err := ParseSpec(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRightsCoverWholeSegmentsBelowAPrefix(t *testing.T) {
	claims := map[string]string{"sub": "42"}
	r, err := mustSpec(t, map[string]any{
		"sub":   []any{"/livesys/{sub}"},
		"pub":   []any{"/livesys/{sub}/status"},
		"admin": true,
		"pull":  false,
	}).Expand(func(n string) (string, bool) { v, ok := claims[n]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a     Action
		topic broker.Topic
		want  bool
	}{
		{Sub, "/livesys/42", true},
		{Sub, "/livesys/42/cmd", true},
		{Sub, "/livesys", false},     // above the right
		{Sub, "/livesys/420", false}, // not a whole segment
		{Sub, "/livesys/4", false},
		{Sub, "/other", false},
		{Pub, "/livesys/42/status", true},
		{Pub, "/livesys/42/status/disk", true},
		{Pub, "/livesys/42", false},
		{Bus, "/livesys/42", false},
		{Pull, "/livesys/42", false},
		{Admin, "/anything/at/all", true},
		{Admin, "", true},
		{Sub, "", false},
	} {
		if got := r.Allows(c.a, c.topic); got != c.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", c.a, c.topic, got, c.want)
		}
	}
	if got := r.Describe(Sub); got != "sub on /livesys/42" {
		t.Errorf("Describe = %q", got)
	}
	if got := r.Describe(Bus); got != "no bus right" {
		t.Errorf("Describe = %q", got)
	}
}

func TestPlaceholdersRefuseUnsafeClaims(t *testing.T) {
	spec := mustSpec(t, map[string]any{"sub": []any{"/livesys/{sub}", "/tenants/{tenant}/x"}})
	for _, c := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"missing", map[string]any{"sub": "42"}, `"tenant" it needs is missing`},
		{"not a string", map[string]any{"sub": "42", "tenant": 7.0}, `"tenant" it needs is missing or not a string`},
		{"slash", map[string]any{"sub": "42/..", "tenant": "a"}, `has '/'`},
		{"dotdot", map[string]any{"sub": "..", "tenant": "a"}, `is ".."`},
		{"empty", map[string]any{"sub": "", "tenant": "a"}, "is empty"},
		{"control", map[string]any{"sub": "4\x002", "tenant": "a"}, "has '\\x00'"},
		{"brace", map[string]any{"sub": "{tenant}", "tenant": "a"}, "has '{'"},
		{"long", map[string]any{"sub": strings.Repeat("x", 300), "tenant": "a"}, "longer than"},
		{"bad utf8", map[string]any{"sub": "\xff", "tenant": "a"}, "UTF-8"},
	} {
		_, err := spec.Expand(func(n string) (string, bool) { s, ok := c.claims[n].(string); return s, ok })
		if err == nil || !errors.Is(err, ErrRights) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestParseSpecRefusesBadRights(t *testing.T) {
	for _, c := range []struct {
		v    map[string]any
		want string
	}{
		{map[string]any{"subscribe": []any{"/a"}}, "unknown action"},
		{map[string]any{"sub": []any{"a"}}, "starts with /"},
		{map[string]any{"sub": []any{"/a//b"}}, "empty"},
		{map[string]any{"sub": []any{"/a/../b"}}, `".."`},
		{map[string]any{"sub": []any{"/a/{sub"}}, "{ without its }"},
		{map[string]any{"sub": []any{"/a/sub}"}}, "} without its {"},
		{map[string]any{"sub": []any{"/a/{s-b}"}}, "placeholder"},
		{map[string]any{"sub": []any{"/a/{}"}}, "placeholder"},
		{map[string]any{"sub": []any{1.0}}, "want a list"},
		{map[string]any{"sub": 3.0}, "want a list"},
	} {
		_, err := ParseSpec(c.v)
		if err == nil || !errors.Is(err, ErrRights) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want one containing %q", c.v, err, c.want)
		}
	}
	// Text forms, as flags give them.
	s, err := ParseSpecStrings(map[string][]string{"sub": {"/a", "/b"}, "admin": {"true"}, "pub": {"false"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Expand(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Allows(Sub, "/b/c") || !r.Allows(Admin, "") || r.Any(Pub) {
		t.Fatalf("rights from strings: %+v", r)
	}
	if _, err := mustSpec(t, map[string]any{"sub": "/x/{sub}"}).Expand(nil); err == nil {
		t.Fatal("placeholders without claims expanded")
	}
}

func TestZeroRightsAllowNothingAndAllRightsEverything(t *testing.T) {
	var none Rights
	all := AllRights()
	for _, a := range Actions {
		if none.Allows(a, "/x") || none.Any(a) {
			t.Errorf("zero rights allow %s", a)
		}
		if !all.Allows(a, "/x/y") || !all.Allows(a, "") {
			t.Errorf("all rights refuse %s", a)
		}
	}
	if all.Allows(numActions, "/x") {
		t.Error("an unknown action is allowed")
	}
}

// underBySegments is the reference for Allows: compare segment by segment.
func underBySegments(t, prefix string) bool {
	if prefix == "/" {
		return true
	}
	ts, ps := strings.Split(t, "/"), strings.Split(prefix, "/")
	if len(ts) < len(ps) {
		return false
	}
	for i := range ps {
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// FuzzRights checks rights matching against a segment-by-segment
// reference, and that placeholders never let a claim escape its segment.
func FuzzRights(f *testing.F) {
	for _, s := range [][3]string{
		{"/livesys/{sub}", "42", "/livesys/42/cmd"},
		{"/livesys/{sub}", "42", "/livesys"},
		{"/livesys/{sub}", "4", "/livesys/42"},
		{"/a/{sub}/b", "x/y", "/a/x/y/b"},
		{"/a/{sub}", "..", "/a"},
		{"/", "", "/anything"},
		{"/a{sub}", "b", "/ab/c"},
		{"/a/b", "", "/a/bc"},
		{"/{sub}", "%2F", "/%2F"},
		{"/x/{sub", "1", "/x/1"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pat, claim, topic string) {
		spec, err := ParseSpec(map[string]any{"sub": []any{pat}})
		if err != nil {
			return
		}
		r, err := spec.Expand(func(string) (string, bool) { return claim, true })
		if err != nil {
			return
		}
		prefixes := r.Prefixes(Sub)
		if len(prefixes) != 1 {
			t.Fatalf("%q gave %d prefixes", pat, len(prefixes))
		}
		p := prefixes[0]
		if p != Everything {
			if _, err := broker.ParseTopic(string(p)); err != nil {
				t.Fatalf("%q with %q gave the invalid prefix %q: %v", pat, claim, p, err)
			}
			// A placeholder fills exactly one segment: the expanded prefix
			// has as many segments as the pattern.
			if got, want := strings.Count(string(p), "/"), strings.Count(pat, "/"); got != want {
				t.Fatalf("%q with claim %q gave %q: %d segments, the pattern has %d", pat, claim, p, got, want)
			}
		}
		tp, err := broker.ParseTopic(topic)
		if err != nil {
			return
		}
		if got, want := r.Allows(Sub, tp), underBySegments(string(tp), string(p)); got != want {
			t.Fatalf("rights %q, topic %q: Allows = %v, reference %v", p, tp, got, want)
		}
		if r.Allows(Pub, tp) {
			t.Fatalf("a sub right allows pub on %q", tp)
		}
		// Below an allowed topic is allowed; above is allowed only within.
		if r.Allows(Sub, tp) && !r.Allows(Sub, tp+"/child") {
			t.Fatalf("%q allowed but not %q", tp, tp+"/child")
		}
	})
}
