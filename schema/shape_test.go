package schema

import (
	"strings"
	"testing"
)

func treeRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := Compile([]Source{{Bus: "/tree", File: "testdata/tree.json"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// nested returns n arrays, one inside the other.
func nested(n int) []byte {
	return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
}

func TestDeepJSONIsRefusedBeforeValidation(t *testing.T) {
	r := treeRegistry(t)
	// On this recursive schema an 800-deep array cost the validator
	// seconds; 10,000 deep, minutes.
	for _, depth := range []int{DefaultMaxDepth + 1, 800, 10000} {
		ref := r.Validate("/tree", "/tree/1", nested(depth), false)
		if ref == nil || ref.Code != CodeJSON || ref.Bus != "/tree" || !strings.Contains(ref.Message, "max_json_depth") {
			t.Fatalf("%d deep: %+v, want code json naming max_json_depth", depth, ref)
		}
		if len(ref.Details) != 1 || *ref.Details[0].Offset != DefaultMaxDepth || ref.Details[0].At != strings.Repeat("/0", DefaultMaxDepth) {
			t.Fatalf("%d deep: details %s", depth, detailsJSON(t, ref.Details))
		}
	}
	// Objects count as arrays do.
	deepObject := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	if ref := r.Validate("/tree", "/tree/1", []byte(deepObject), false); ref == nil || ref.Code != CodeJSON {
		t.Fatalf("10,000-deep object: %+v", ref)
	}
	// At the limit: validated, and valid.
	if ref := r.Validate("/tree", "/tree/1", nested(DefaultMaxDepth), false); ref != nil {
		t.Fatalf("%d deep: %+v", DefaultMaxDepth, ref)
	}
	// The limit is the caller's.
	if ref := r.ValidateDepth("/tree", "/tree/1", nested(3), false, 2); ref == nil || ref.Code != CodeJSON {
		t.Fatalf("3 deep with a limit of 2: %+v", ref)
	}
	// Brackets in strings are text.
	if ref := r.ValidateDepth("/tree", "/tree/1", []byte(`["[[[[", {"{{{{":"]]"}]`), false, 2); ref != nil {
		t.Fatalf("brackets in strings: %+v", ref)
	}
}

func TestDuplicateKeysAreRefused(t *testing.T) {
	r := exampleRegistry(t)
	tree := treeRegistry(t)
	many := `{`
	for i := range 40 {
		many += `"k` + strings.Repeat("x", i) + `":1,`
	}
	many += `"kxxxxx":2}`
	cases := []struct {
		name    string
		reg     *Registry
		bus     string
		payload string
		key, at string
	}{
		{"the same key twice", r, "/livesys", `{"cmd":"rm -rf /",` + validCommand[1:], "cmd", "/cmd"},
		{"spelt with an escape", r, "/livesys", `{"\u0063md":"rm -rf /",` + validCommand[1:], "cmd", "/cmd"},
		{"nested", tree, "/tree", `{"a":[{"x":1},{"x":1,"y":2,"x":3}]}`, "x", "/a/1/x"},
		{"a key with / and ~", tree, "/tree", `{"q":{"a/b~":1,"a/b~":2}}`, "a/b~", "/q/a~1b~0"},
		{"in a large object", tree, "/tree", many, "kxxxxx", "/kxxxxx"},
	}
	for _, c := range cases {
		ref := c.reg.Validate(string(c.bus), string(c.bus+"/1"), []byte(c.payload), false)
		if ref == nil || ref.Code != CodeJSON || !strings.Contains(ref.Message, `"`+c.key+`"`) || !strings.Contains(ref.Message, c.at) {
			t.Errorf("%s: %+v, want code json naming %q at %s", c.name, ref, c.key, c.at)
			continue
		}
		if len(ref.Details) != 1 || ref.Details[0].At != c.at {
			t.Errorf("%s: details %s, want at %s", c.name, detailsJSON(t, ref.Details), c.at)
		}
	}
	// The same key in different objects, or as a value, is no duplicate.
	for _, ok := range []string{`{"a":{"a":1},"b":{"a":"a"},"c":[{"a":1},{"a":2}]}`, `["a","a"]`, `{"a\"":1,"a":2}`} {
		if ref := tree.Validate("/tree", "/tree/1", []byte(ok), false); ref != nil {
			t.Errorf("%s: %+v", ok, ref)
		}
	}
}
