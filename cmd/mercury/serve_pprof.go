package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// servePprof serves the runtime profiles on addr, apart from the broker's
// own listener, and returns the function that stops it. The listener is
// exposed as --listen is (see checkExposure), and guard puts the broker's
// checks in front: Host, Origin and, with auth configured, a credential
// with admin on everything.
func servePprof(addr string, guard func(http.Handler) http.Handler, authConfigured, allowAnonymous bool, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for --pprof: %w", err)
	}
	if err := checkExposure(ln, addr, "pprof", authConfigured, allowAnonymous); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: guard(mux), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("profiler listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	go hs.Serve(ln)
	return func() { hs.Close() }, nil
}

// redactedCmdline is pprof.Cmdline with passwords in URLs hidden.
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		args[i] = redactURLs(a)
	}
	fmt.Fprint(w, strings.Join(args, "\x00"))
}

// redactURLs hides the password of a URL in s ("--pg=postgres://u:pw@h/db"
// or the URL alone).
func redactURLs(s string) string {
	prefix, value := "", s
	if strings.HasPrefix(s, "-") {
		if name, v, ok := strings.Cut(s, "="); ok {
			prefix, value = name+"=", v
		}
	}
	u, err := url.Parse(value)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	return prefix + u.Redacted()
}

// refusePasswordFlag refuses a URL with a password given by the named
// flag: every user of the machine can read a process's command line. key
// is the setting's key in the config file, "" for none.
func refusePasswordFlag(fs *flag.FlagSet, name, key, env string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name != name {
			return
		}
		if u, perr := url.Parse(f.Value.String()); perr == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				where := env
				if key != "" {
					where = "the config file (" + key + ") or " + env
				}
				err = command.UsageError("--%s holds a password, which every user of this machine can read in the process list: "+
					"give the URL in %s, or the password in PGPASSWORD or ~/.pgpass", name, where)
			}
		}
	})
	return err
}
