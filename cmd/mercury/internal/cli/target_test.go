package cli

import (
	"flag"
	"net/url"
	"testing"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

func TestTarget(t *testing.T) {
	t.Setenv("MERCURY_URL", "")
	for _, tc := range []struct {
		server, pattern, arg string
		query                url.Values
		want                 string
	}{
		{"", "sub", "/livesys", nil, "ws://127.0.0.1:3000/sub/livesys"},
		{"", "sub", "livesys/42/", nil, "ws://127.0.0.1:3000/sub/livesys/42"},
		{"wss://broker.example.com/mercury/", "pub", "/a b/ü?", nil, "wss://broker.example.com/mercury/pub/a%20b/%C3%BC%3F"},
		{"http://h:1", "sub", "/x", url.Values{"since": {"17"}}, "http://h:1/sub/x?since=17"},
		{"", "sub", "ws://other:3000/sub/x?echo=1", url.Values{"since": {"5"}}, "ws://other:3000/sub/x?echo=1&since=5"},
		{"", "pull", "WSS://other/pull/jobs", nil, "wss://other/pull/jobs"},
		{"", "sub", "ws://other/anything/x", nil, "ws://other/anything/x"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c := addConnFlags(fs, true)
		args := []string{}
		if tc.server != "" {
			args = append(args, "--server", tc.server)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		got, err := c.target(tc.pattern, tc.arg, tc.query)
		if err != nil || got != tc.want {
			t.Errorf("target(%q, %q) on %q = %q, %v; want %q", tc.pattern, tc.arg, tc.server, got, err, tc.want)
		}
	}
}

func TestTargetRefusesWrongURLs(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c := addConnFlags(fs, true)
	fs.Parse([]string{"--server", "localhost:3000"})
	for _, tc := range [][2]string{
		{"pub", "ws://h/sub/x"}, // another pattern's URL
		{"sub", "ws://h:3000"},  // no topic
		{"sub", "ws://h/sub/"},  // no topic
		{"sub", "/x"},           // --server is not a URL
		{"sub", "/"},            // empty topic
		{"sub", ""},
	} {
		if _, err := c.target(tc[0], tc[1], nil); err == nil {
			t.Errorf("target(%q, %q) accepted", tc[0], tc[1])
		} else if ee, ok := err.(*command.ExitError); !ok || ee.Code != command.ExitUsage {
			t.Errorf("target(%q, %q): %v, want a usage error", tc[0], tc[1], err)
		}
	}
}

func TestServerFromEnvironment(t *testing.T) {
	t.Setenv("MERCURY_URL", "wss://from-env:1")
	t.Setenv("MERCURY_TOKEN", "secret")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c := addConnFlags(fs, true)
	fs.Parse(nil)
	if got, _ := c.target("sub", "/x", nil); got != "wss://from-env:1/sub/x" {
		t.Errorf("MERCURY_URL ignored: %q", got)
	}
	opts, err := c.options()
	if err != nil || opts.Token != "secret" {
		t.Errorf("MERCURY_TOKEN ignored: %+v %v", opts, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	c = addConnFlags(fs, true)
	fs.Parse([]string{"--server", "ws://flag:2", "--token", "t2"})
	if got, _ := c.target("sub", "/x", nil); got != "ws://flag:2/sub/x" {
		t.Errorf("--server does not win over MERCURY_URL: %q", got)
	}
	if opts, _ := c.options(); opts.Token != "t2" {
		t.Errorf("--token does not win over MERCURY_TOKEN: %q", opts.Token)
	}
}
