package command

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsTakesFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		count int
		quiet bool
		pos   []string
	}{
		{[]string{"/x", "--count", "2"}, 2, false, []string{"/x"}},
		{[]string{"--count=3", "/x", "hello", "--quiet"}, 3, true, []string{"/x", "hello"}},
		{[]string{"/x", "--", "--count", "-5"}, 0, false, []string{"/x", "--count", "-5"}},
		{[]string{"-count", "1", "/x", "a b", "c"}, 1, false, []string{"/x", "a b", "c"}},
		{nil, 0, false, nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		count := fs.Int("count", 0, "")
		quiet := fs.Bool("quiet", false, "")
		pos, err := ParseArgs(fs, tc.args, Stdio{Err: &bytes.Buffer{}})
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *count != tc.count || *quiet != tc.quiet || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: count %d quiet %v args %q; want %d %v %q", tc.args, *count, *quiet, pos, tc.count, tc.quiet, tc.pos)
		}
	}
}

func TestHeaderFlag(t *testing.T) {
	var h HeaderList
	for _, v := range []string{"X-A: 1", "Origin:https://example.com", "X-Empty:"} {
		if err := h.Set(v); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
	}
	if got := h.String(); got != "X-A: 1, Origin: https://example.com, X-Empty: " {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"no colon", ": value", "Two words: x"} {
		if err := h.Set(bad); err == nil || !strings.Contains(err.Error(), "NAME:VALUE") {
			t.Errorf("%q: %v, want an error naming the form", bad, err)
		}
	}
}
