package web

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originPolicy decides which browser origins may use the broker, to stop
// cross-site WebSocket hijacking and cross-site POSTs.
//
// With no patterns, requests without an Origin header (non-browser
// clients) and same-host browsers are allowed. With patterns, the Origin
// header is required and must match one of them. A pattern is matched,
// anchored, against the origin's host ("example.com", "*.example.com",
// "localhost:3000"); a pattern with a scheme ("https://example.com") is
// matched against scheme and host. "*" matches any run of characters.
type originPolicy struct {
	patterns []string
}

func newOriginPolicy(patterns []string) (originPolicy, error) {
	var p originPolicy
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if pat == "" {
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			return p, fmt.Errorf("bad origin pattern %q: %w", pat, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}

func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(p.patterns) == 0 {
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	if origin == "" {
		return false
	}
	u, err := url.Parse(strings.ToLower(origin))
	if err != nil || u.Host == "" {
		return false
	}
	full := u.Scheme + "://" + u.Host
	for _, pat := range p.patterns {
		var candidates []string
		if strings.Contains(pat, "://") {
			candidates = []string{full}
		} else {
			candidates = []string{u.Host, u.Hostname()}
		}
		for _, c := range candidates {
			// The pattern was checked at start, so Match cannot fail here.
			if ok, _ := path.Match(pat, c); ok {
				return true
			}
		}
	}
	return false
}
