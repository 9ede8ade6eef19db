package trie

import (
	"slices"
	"testing"
)

func TestBelowByWholeSegments(t *testing.T) {
	var tr Tree[string]
	for _, p := range []string{"/", "/a", "/a/b", "/a/b/c", "/ab", "/x/y"} {
		tr.Insert(p, p)
	}
	for path, want := range map[string][]string{
		"/":     {"/", "/a", "/a/b", "/a/b/c", "/ab", "/x/y"},
		"/a":    {"/a", "/a/b", "/a/b/c"},
		"/a/b":  {"/a/b", "/a/b/c"},
		"/x":    {"/x/y"},
		"/none": nil,
	} {
		got := tr.Below(path, nil)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("Below(%s) = %v, want %v", path, got, want)
		}
	}
}
