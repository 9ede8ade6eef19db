package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mercury-broker/mercury/web/client"
)

// remotes returns the client address /api/connections shows for each
// open connection, by topic.
func remotes(t *testing.T, base string) map[string]string {
	t.Helper()
	code, body := getBody(t, base+"/api/connections", "")
	if code != 200 {
		t.Fatalf("/api/connections: %d %s", code, body)
	}
	var cs []connectionJSON
	if err := json.Unmarshal(body, &cs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.Topic] = c.Remote
	}
	return out
}

func mustPrefixes(t *testing.T, list ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientAddressFromTrustedProxy: behind a trusted proxy the client's
// address is the rightmost one its proxies recorded that is not a trusted
// proxy; the same headers from anyone else are not believed.
func TestClientAddressFromTrustedProxy(t *testing.T) {
	behind := startServer(t, Options{TrustedProxies: mustPrefixes(t, "127.0.0.1", "10.0.0.0/8")})
	direct := startServer(t, Options{})
	cases := []struct {
		topic, name, value, want string
	}{
		{"/xff", "X-Forwarded-For", "203.0.113.9", "203.0.113.9"},
		// What the client wrote itself (leftmost) is not believed.
		{"/xff-forged", "X-Forwarded-For", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		// Trusted proxies in the chain are skipped.
		{"/xff-chain", "X-Forwarded-For", "1.2.3.4, 198.51.100.8, 10.1.2.3", "198.51.100.8"},
		{"/fwd", "Forwarded", `for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"`, "2001:db8::17"},
		{"/fwd-unknown", "Forwarded", "for=unknown", "127.0.0.1"},
	}
	for _, c := range cases {
		h := http.Header{c.name: {c.value}}
		behind.dialURL(t, client.URL(behind.ws, "sub", c.topic, nil), &client.Options{Header: h})
		direct.dialURL(t, client.URL(direct.ws, "sub", c.topic, nil), &client.Options{Header: h})
	}
	behind.waitSubscribed(t, len(cases))
	direct.waitSubscribed(t, len(cases))
	got, gotDirect := remotes(t, behind.http.URL), remotes(t, direct.http.URL)
	for _, c := range cases {
		if ip := clientIP(got[c.topic]); ip != c.want {
			t.Errorf("behind a trusted proxy, %s: %q: client %q, want %q", c.name, c.value, got[c.topic], c.want)
		}
		if ip := clientIP(gotDirect[c.topic]); ip != "127.0.0.1" {
			t.Errorf("no trusted proxy, %s: %q: client %q, want the peer 127.0.0.1", c.name, c.value, gotDirect[c.topic])
		}
	}
}

// TestPerAddressLimitUsesTheClientAddress: behind a trusted proxy the
// per-address limit counts clients, not the proxy.
func TestPerAddressLimitUsesTheClientAddress(t *testing.T) {
	ts := startServer(t, Options{MaxConnectionsPerIP: 1, TrustedProxies: mustPrefixes(t, "127.0.0.1")})
	for _, ip := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		ts.dialURL(t, ts.ws+"/sub/x", &client.Options{Header: http.Header{"X-Forwarded-For": {ip}}})
	}
	if got := dialStatus(t, ts.ws+"/sub/x", http.Header{"X-Forwarded-For": {"203.0.113.2"}}); got != http.StatusTooManyRequests {
		t.Errorf("second connection of one client: %d, want 429", got)
	}
}

// TestNoPerAddressLimitByDefault: many clients behind one NAT (or one
// untrusted proxy) are all served unless a limit is configured.
func TestNoPerAddressLimitByDefault(t *testing.T) {
	ts := startServer(t, Options{})
	const n = 1100 // past the old default of 1,000 per address
	conns := make([]*client.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		c, err := client.Dial(ctx, ts.ws+"/sub/nat", nil)
		if err != nil {
			t.Fatalf("connection %d from one address: %v", i+1, err)
		}
		conns = append(conns, c)
	}
}

// proxyClient dials the server at addr as a proxy sending the PROXY
// protocol (v2) for the client src would.
func proxyClient(src string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}}
}

// startProxied serves ts's server on a PROXY protocol listener trusting
// trusted, and returns its base URL.
func startProxied(t *testing.T, ts *testServer, trusted ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(ts.Server)
	hs.Listener.Close()
	hs.Listener = ProxyProtocolListener(ln, mustPrefixes(t, trusted...))
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestProxyProtocolOnlyFromTrustedProxies: a trusted proxy's PROXY header
// gives the client's address; anyone else's fails the connection.
func TestProxyProtocolOnlyFromTrustedProxies(t *testing.T) {
	ts := startServer(t, Options{})
	trusted := startProxied(t, ts, "127.0.0.1/32")
	ws := "ws" + trusted[len("http"):]
	c, err := client.Dial(context.Background(), ws+"/sub/proxied", &client.Options{HTTPClient: proxyClient("192.0.2.44:5555")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ts.waitSubscribed(t, 1)
	if got := remotes(t, ts.http.URL)["/proxied"]; got != "192.0.2.44:5555" {
		t.Errorf("client address %q, want the PROXY header's 192.0.2.44:5555", got)
	}
	// A trusted proxy may also connect without a header.
	if code, _ := getBody(t, trusted+"/healthz", ""); code != 200 {
		t.Errorf("trusted peer without a PROXY header: %d", code)
	}

	untrusted := startProxied(t, ts, "10.0.0.0/8")
	resp, err := proxyClient("192.0.2.45:5555").Get(untrusted + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Errorf("PROXY header from an untrusted peer: %s, want the connection refused", resp.Status)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	p, err := ParseTrustedProxies([]string{"10.1.2.3/8", " 127.0.0.1 ", "::1", ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p[0].String() != "10.0.0.0/8" || p[1].String() != "127.0.0.1/32" || p[2].String() != "::1/128" {
		t.Errorf("parsed %v", p)
	}
	if _, err := ParseTrustedProxies([]string{"proxy.example.com"}); err == nil {
		t.Error("a name parsed as a trusted proxy")
	}
}
