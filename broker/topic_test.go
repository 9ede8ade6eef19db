package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	good := map[string]Topic{
		"/livesys":        "/livesys",
		"livesys/42":      "/livesys/42",
		"/a/b/c":          "/a/b/c",
		"/with space/ü":   "/with space/ü",
		"/a.b/c-d/e_f/:x": "/a.b/c-d/e_f/:x",
		"/...":            "/...",
	}
	for in, want := range good {
		got, err := ParseTopic(in)
		if err != nil || got != want {
			t.Errorf("ParseTopic(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                              "empty",
		"/":                             "empty",
		"/a//b":                         "segment 2 is empty",
		"/a/":                           "segment 2 is empty",
		"/a/../b":                       `segment 2 is ".."`,
		"/./a":                          `segment 1 is "."`,
		"/a\x00b":                       "control character U+0000",
		"/a\nb":                         "control character U+000A",
		"/a\x7f":                        "control character U+007F",
		"/a\xff":                        "not valid UTF-8",
		"/" + strings.Repeat("x", 2000): "the limit is 1024",
		strings.Repeat("/x", 33):        "more than 32 segments",
	}
	for in, reason := range bad {
		_, err := ParseTopic(in)
		if !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ParseTopic(%q) err = %v, want ErrInvalidTopic", in, err)
			continue
		}
		if !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseTopic(%q) err = %q, want it to say %q", in, err, reason)
		}
	}
}

func TestTopicLimits(t *testing.T) {
	l := TopicLimits{MaxLength: 8, MaxDepth: 2}
	if _, err := l.Parse("/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Parse("/a/b/c"); err == nil {
		t.Fatal("depth 3 accepted with MaxDepth 2")
	}
	if _, err := l.Parse("/abcdefgh"); err == nil {
		t.Fatal("9 bytes accepted with MaxLength 8")
	}
}

func TestUnder(t *testing.T) {
	cases := []struct {
		t, prefix Topic
		want      bool
	}{
		{"/a/b", "/a", true},
		{"/a", "/a", true},
		{"/ab", "/a", false},
		{"/a", "/a/b", false},
		{"/x", "/", true},
	}
	for _, c := range cases {
		if got := c.t.Under(c.prefix); got != c.want {
			t.Errorf("%q.Under(%q) = %v", c.t, c.prefix, got)
		}
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"/a/b", "a", "/a//b", "/../x", "/a\x00", "/é/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		topic, err := ParseTopic(s)
		if err != nil {
			return
		}
		// Whatever is accepted is canonical: parsing it again changes nothing.
		again, err := ParseTopic(string(topic))
		if err != nil || again != topic {
			t.Fatalf("ParseTopic(%q) = %q, but reparsing gives %q, %v", s, topic, again, err)
		}
		for _, seg := range topic.Segments() {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ParseTopic(%q) accepted segment %q", s, seg)
			}
		}
	})
}
