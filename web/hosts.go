package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
)

// hostPolicy decides which names a request may call the broker by, in
// its Host header. It stops DNS rebinding: a web page whose name comes to
// resolve to 127.0.0.1 is same-origin with itself, so its Origin passes,
// but its Host is still its own name.
//
// With patterns, Host must match one ("*" alone: any). Without, a broker
// without auth accepts only loopback names and the address the request
// arrived on; a broker with auth accepts any name (its credentials guard
// it).
type hostPolicy struct {
	patterns []string
}

func newHostPolicy(patterns []string) (hostPolicy, error) {
	var p hostPolicy
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if pat == "" {
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			return p, fmt.Errorf("bad allowed host pattern %q: %w", pat, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}

// check returns why r's Host is not served, nil when it is.
func (p hostPolicy) check(r *http.Request, authConfigured bool) *apiError {
	host := strings.ToLower(r.Host)
	if host == "" {
		return nil // HTTP/1.0 without Host: not a browser, which always sends one
	}
	name := hostname(host)
	if len(p.patterns) > 0 {
		for _, pat := range p.patterns {
			for _, c := range []string{host, name} {
				if ok, _ := path.Match(pat, c); ok {
					return nil
				}
			}
		}
		return &apiError{Status: http.StatusMisdirectedRequest, Code: "host",
			Message: fmt.Sprintf("Host %q is not served here: allowed_hosts (--allowed-hosts) does not list it", r.Host)}
	}
	if authConfigured || isLoopbackName(name) || isLocalAddr(r, name) {
		return nil
	}
	return &apiError{Status: http.StatusMisdirectedRequest, Code: "host",
		Message: fmt.Sprintf("Host %q is not served here: a broker without auth answers only to loopback names "+
			"(localhost, 127.0.0.1, [::1]) and its listen address, so that no web page can reach it by a name of its own (DNS rebinding); "+
			"list the names to serve with allowed_hosts (--allowed-hosts), or configure auth", r.Host)}
}

// hostname is host without its port and brackets.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

func isLoopbackName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Unmap().IsLoopback()
}

// isLocalAddr reports whether name is the address the request arrived on.
func isLocalAddr(r *http.Request, name string) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	want, ok := addrOf(local.String())
	got, err := netip.ParseAddr(name)
	return ok && err == nil && got.Unmap() == want
}
