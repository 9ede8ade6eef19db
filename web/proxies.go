package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"

	"github.com/pires/go-proxyproto"
)

// Behind a reverse proxy every connection comes from the proxy. The
// proxies named in Options.TrustedProxies may say who the client is: in
// Forwarded or X-Forwarded-For, or with the PROXY protocol on the listener
// (ProxyProtocolListener). Nobody else is believed.

// ParseTrustedProxies parses addresses and CIDR ranges ("10.0.0.0/8",
// "127.0.0.1", "::1").
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR range such as 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// proxyTrust is the set of trusted proxies.
type proxyTrust []netip.Prefix

func (t proxyTrust) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrOf parses the address of a RemoteAddr or of a Forwarded "for" value
// ("192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]:4711", "2001:db8::1").
func addrOf(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err == nil
}

// forwardedChain returns the client addresses the proxies recorded,
// nearest last: from Forwarded when present (RFC 7239), else from
// X-Forwarded-For. Proto is what Forwarded or X-Forwarded-Proto says of
// the scheme the client used.
func forwardedChain(h http.Header) (chain []string, proto string) {
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, elem := range strings.Split(strings.Join(fw, ","), ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				switch strings.ToLower(k) {
				case "for":
					chain = append(chain, strings.Trim(v, `"`))
				case "proto":
					proto = strings.ToLower(strings.Trim(v, `"`))
				}
			}
		}
		return chain, proto
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for a := range strings.SplitSeq(v, ",") {
			chain = append(chain, strings.TrimSpace(a))
		}
	}
	return chain, strings.ToLower(strings.TrimSpace(h.Get("X-Forwarded-Proto")))
}

// clientOf returns the client address of r: its peer's, or, when the peer
// is a trusted proxy, the rightmost address in the chain the proxies
// recorded that is not itself a trusted proxy (addresses further left were
// written by the client, who may lie). https reports that a trusted proxy
// says the client used TLS.
func (t proxyTrust) clientOf(r *http.Request) (remote string, https bool) {
	remote = r.RemoteAddr
	peer, ok := addrOf(remote)
	if len(t) == 0 || !ok || !t.trusts(peer) {
		return remote, false
	}
	chain, proto := forwardedChain(r.Header)
	for i := len(chain) - 1; i >= 0; i-- {
		a, ok := addrOf(chain[i])
		if !ok {
			break // "unknown" or an obfuscated name: the last known hop stands
		}
		remote = a.String()
		if !t.trusts(a) {
			break
		}
	}
	return remote, proto == "https"
}

// forwardedHTTPS is the context key of a request a trusted proxy received
// over TLS.
type forwardedHTTPS struct{}

// withClient returns r with RemoteAddr set to the client's address and the
// scheme a trusted proxy reported in its context.
func (t proxyTrust) withClient(r *http.Request) *http.Request {
	remote, https := t.clientOf(r)
	if remote == r.RemoteAddr && !https {
		return r
	}
	r = r.WithContext(context.WithValue(r.Context(), forwardedHTTPS{}, https))
	r.RemoteAddr = remote
	return r
}

// schemeOf is the scheme the client used to reach the broker.
func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if https, _ := r.Context().Value(forwardedHTTPS{}).(bool); https {
		return "https"
	}
	return "http"
}

// ProxyProtocolListener accepts the PROXY protocol (v1 and v2) on ln from
// the trusted proxies: their connections then have the client's address.
// A header from anyone else fails the connection; a trusted proxy may also
// connect without one.
func ProxyProtocolListener(ln net.Listener, trusted []netip.Prefix) net.Listener {
	t := proxyTrust(trusted)
	return &proxyListener{Listener: proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if a, ok := addrOf(o.Upstream.String()); ok && t.trusts(a) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
	}}
}

// proxyListener keeps the socket of a connection reachable, so that
// WebSocket writes still go out with one writev (see wireConn).
type proxyListener struct{ proxyproto.Listener }

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if pc, ok := c.(*proxyproto.Conn); ok {
		if sc, ok := pc.Raw().(syscall.Conn); ok {
			return &proxiedConn{Conn: pc, sc: sc}, nil
		}
	}
	return c, err
}

// proxiedConn reads through the PROXY protocol parser; writes, which it
// does not touch, may use the socket directly.
type proxiedConn struct {
	*proxyproto.Conn
	sc syscall.Conn
}

func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
