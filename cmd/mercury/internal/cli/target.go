package cli

import (
	"flag"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

const defaultServer = "ws://127.0.0.1:3000"

// connFlags are the flags that say how to reach the broker, shared by the
// commands that talk to one.
type connFlags struct {
	fs       *flag.FlagSet
	server   string
	token    string
	headers  command.HeaderList
	ca       string
	insecure bool
	quiet    bool
}

// addConnFlags defines the connection flags on fs; withServer is false
// for connect, which takes a whole URL.
func addConnFlags(fs *flag.FlagSet, withServer bool) *connFlags {
	c := &connFlags{fs: fs}
	if withServer {
		fs.StringVar(&c.server, "server", defaultServer, "broker `URL` (ws://, wss://, http:// or https://); default from MERCURY_URL")
	}
	fs.StringVar(&c.token, "token", "", "`TOKEN` sent as 'Authorization: Bearer TOKEN'; default from MERCURY_TOKEN")
	fs.Var(&c.headers, "header", "extra handshake or request header `NAME:VALUE` (repeatable)")
	fs.StringVar(&c.ca, "ca", "", "PEM `FILE` of the certificate authorities to trust for wss:// and https://, besides the system's")
	fs.BoolVar(&c.insecure, "insecure", false, "do not check the broker's TLS certificate")
	fs.BoolVar(&c.quiet, "quiet", false, "print no connection status on stderr, only errors")
	return c
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// serverURL returns the broker's base URL: --server, else MERCURY_URL,
// else the default.
func (c *connFlags) serverURL() string {
	if !command.Given(c.fs, "server") {
		if env := os.Getenv("MERCURY_URL"); env != "" {
			return env
		}
	}
	return c.server
}

// options returns the client options the flags ask for.
func (c *connFlags) options() (*client.Options, error) {
	opts := &client.Options{Token: c.token}
	if opts.Token == "" {
		opts.Token = os.Getenv("MERCURY_TOKEN")
	}
	if len(c.headers) > 0 {
		opts.Header = http.Header{}
		for _, kv := range c.headers {
			opts.Header.Add(kv[0], kv[1])
		}
	}
	if c.ca != "" || c.insecure {
		conf, err := client.TLSConfig(c.ca, c.insecure)
		if err != nil {
			return nil, command.UsageError("--ca: %v", err)
		}
		opts.HTTPClient = client.NewHTTPClient(conf)
	}
	return opts, nil
}

var patternNames = []string{"sub", "pub", "bus", "push", "pull"}

// isURL reports whether a command-line argument is a whole URL rather
// than a topic.
func isURL(arg string) bool {
	for _, scheme := range []string{"ws://", "wss://", "http://", "https://"} {
		if len(arg) >= len(scheme) && strings.EqualFold(arg[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

// target returns the URL of pattern for arg, a topic ("/livesys/42",
// "livesys/42") on the broker of the flags, or a whole URL
// ("ws://host:3000/sub/livesys") used as it is. query is added to it.
func (c *connFlags) target(pattern, arg string, query url.Values) (string, error) {
	if arg == "" {
		return "", command.UsageError("no topic: give a topic such as /livesys/42, or a URL such as ws://127.0.0.1:3000/%s/livesys/42", pattern)
	}
	var u *url.URL
	if isURL(arg) {
		var err error
		if u, err = url.Parse(arg); err != nil {
			return "", command.UsageError("bad URL %q: %v", arg, err)
		}
		first, rest, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
		switch {
		case first == "" || rest == "":
			return "", command.UsageError("URL %q has no topic: want %s://%s/%s/<topic>", arg, u.Scheme, u.Host, pattern)
		case first != pattern && slices.Contains(patternNames, first):
			return "", command.UsageError("URL %q is a /%s/ URL: mercury %s needs /%s/", arg, first, pattern, pattern)
		}
	} else {
		server := c.serverURL()
		if !isURL(server) {
			return "", command.UsageError("--server %q: want a URL such as %s", server, defaultServer)
		}
		var err error
		if u, err = url.Parse(strings.TrimRight(server, "/")); err != nil {
			return "", command.UsageError("--server %q: %v", server, err)
		}
		topic := strings.Trim(arg, "/")
		if topic == "" {
			return "", command.UsageError("topic %q is empty", arg)
		}
		segments := strings.Split(topic, "/")
		for i, s := range segments {
			segments[i] = url.PathEscape(s)
		}
		u.RawPath = u.EscapedPath() + "/" + pattern + "/" + strings.Join(segments, "/")
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return "", command.UsageError("topic %q: %v", arg, err)
		}
		u.Path = p
	}
	if len(query) > 0 {
		q := u.Query()
		for k, vs := range query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
