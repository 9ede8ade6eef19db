package test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tlsFront is a TLS-terminating reverse proxy in front of a broker, as
// production runs it, recording the headers that reach it.
type tlsFront struct {
	srv     *httptest.Server
	WSS     string // wss://127.0.0.1:port
	CAFile  string // the certificate to trust, PEM
	mu      sync.Mutex
	headers []http.Header
}

func startTLSFront(t *testing.T, b *brokerProc) *tlsFront {
	t.Helper()
	backend, err := url.Parse(b.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFront{}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.WSS = "wss://" + strings.TrimPrefix(f.srv.URL, "https://")
	f.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.CAFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tlsFront) sawHeader(name, value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.headers {
		if h.Get(name) == value {
			return true
		}
	}
	return false
}

func TestCLIOverTLS(t *testing.T) {
	b := startBroker(t)
	front := startTLSFront(t, b)
	env := cliEnv(t, "MERCURY_URL="+front.WSS, "MERCURY_TOKEN=s3cret")

	// The broker's certificate is not trusted by the system: refused.
	_, stderr, code := runCLIEnv(t, env, "", "sub", "/x", "--timeout", "5s")
	expectExit(t, stderr, code, 3, "cannot connect to "+front.WSS+"/sub/x", "certificate")

	// With --ca, trusted: a subscriber over wss://, a publisher over https://.
	sub := startCLI(t, env, "sub", "/x", "--ca", front.CAFile, "--count", "1", "--header", "X-Trace: 7")
	sub.waitStderr(t, "connected to "+front.WSS+"/sub/x")
	_, stderr, code = runCLIEnv(t, env, "", "pub", "/x", `{"over":"tls"}`, "--ca", front.CAFile)
	expectExit(t, stderr, code, 0)
	if got := sub.line(t); got != `{"over":"tls"}` {
		t.Fatalf("got %q", got)
	}
	sub.expectExit(t, 0)
	if !front.sawHeader("Authorization", "Bearer s3cret") {
		t.Fatal("MERCURY_TOKEN was not sent as a bearer token")
	}
	if !front.sawHeader("X-Trace", "7") {
		t.Fatal("--header was not sent")
	}

	// --insecure: not checked at all; --token wins over MERCURY_TOKEN.
	_, stderr, code = runCLIEnv(t, env, "", "pub", "/x", "m", "--insecure", "--token", "other")
	expectExit(t, stderr, code, 0)
	if !front.sawHeader("Authorization", "Bearer other") {
		t.Fatal("--token was not sent")
	}
}
