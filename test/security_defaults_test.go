package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
	"github.com/mercury-broker/mercury/web/client"
)

// serveOnce runs mercury serve that is expected to refuse to start, and
// returns its exit code and output.
func serveOnce(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(mercuryBin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	done := make(chan struct{})
	time.AfterFunc(20*time.Second, func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	out, _ := cmd.CombinedOutput()
	close(done)
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestExposedListenerNeedsAuthOrAllowAnonymous(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
		args []string
		what string
	}{
		{"flag", nil, []string{"--listen", "0.0.0.0:0"}, "0.0.0.0:0 (--listen)"},
		{"every interface", nil, []string{"--listen", ":0"}, ":0 (--listen)"},
		{"environment", []string{"MERCURY_LISTEN=0.0.0.0:0"}, nil, "0.0.0.0:0 (--listen)"},
		{"admin listener", nil, []string{"--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"}, "0.0.0.0:0 (--admin-listen)"},
	} {
		code, out := serveOnce(t, c.env, c.args...)
		if code != 2 || !strings.Contains(out, "refusing to serve "+c.what+" without authentication") ||
			!strings.Contains(out, "--allow-anonymous") || strings.Contains(out, "mercury listening") {
			t.Errorf("%s: exit %d:\n%s", c.name, code, out)
		}
	}

	// --allow-anonymous says it is meant: it starts, and warns.
	b := startBrokerOn(t, "0.0.0.0:0", "--allow-anonymous")
	waitFor(t, "the warning", func() bool {
		return strings.Contains(b.logs.String(), "every client that reaches the broker may do everything")
	})
	sub := dial(t, b.WS+"/sub/x", nil)
	post(t, b.HTTP+"/pub/x", "anyone")
	if got := readText(t, sub); got != "anyone" {
		t.Fatalf("got %q", got)
	}
	// So does the variable.
	startBrokerEnv(t, []string{"MERCURY_ALLOW_ANONYMOUS=true"}, "--listen", "0.0.0.0:0")

	// With auth configured it starts, and anonymous clients get nothing.
	ab := startAuthBroker(t, "--listen", "0.0.0.0:0")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, ab.WS+"/sub/x", nil); err == nil || err.(*client.HandshakeError).Status != 401 {
		t.Fatalf("anonymous on an authenticated broker: %v", err)
	}
}

func TestAdminListener(t *testing.T) {
	ab := startAuthBroker(t, "--admin-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`msg="admin API listening" addr=http://([0-9.:]+)`).FindStringSubmatch(ab.logs.String())
	if m == nil {
		t.Fatalf("no admin listener in the logs:\n%s", ab.logs)
	}
	admin := "http://" + m[1]
	get := func(url, token string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		url, token string
		want       int
	}{
		{ab.HTTP + "/api/buses", ab.apiKey, 404}, // not on the main listener
		{ab.HTTP + "/api/queues", ab.apiKey, 404},
		{admin + "/api/buses", "", 401}, // the admin right is still needed
		{admin + "/api/buses", ab.apiKey, 200},
		{admin + "/api/queues", ab.apiKey, 200},
		{admin + "/healthz", "", 200},
		{admin + "/sub/x", ab.apiKey, 404}, // the admin listener serves the admin API only
	} {
		if got := get(c.url, c.token); got != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, got, c.want)
		}
	}
	// On the main listener, without --admin-listen, the admin API is there
	// and needs the right.
	main := startAuthBroker(t)
	if got := get(main.HTTP+"/api/buses", ""); got != 401 {
		t.Errorf("anonymous GET /api/buses: %d", got)
	}
	if got := get(main.HTTP+"/api/buses", main.apiKey); got != 200 {
		t.Errorf("GET /api/buses with the admin key: %d", got)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "mercury test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestTLSAndCertificateReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, 1)
	b := startBroker(t, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(b.WS, "wss://") {
		t.Fatalf("broker at %s, want wss://", b.WS)
	}
	trusting := func(cert *x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		return client.NewHTTPClient(&tls.Config{RootCAs: pool})
	}
	hc := trusting(first)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := client.Dial(ctx, b.WS+"/sub/tls", &client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()
	if resp, err := client.Post(ctx, hc, b.HTTP+"/pub/tls", "", []byte("over TLS"), nil); err != nil || resp.Status != 200 {
		t.Fatalf("POST over TLS: %v %v", resp, err)
	}
	if f, err := sub.Read(ctx); err != nil || string(f.Data) != "over TLS" {
		t.Fatalf("wss subscriber: %q %v", f.Data, err)
	}
	served := func() *big.Int {
		c, err := tls.Dial("tcp", b.Listen, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	if s := served(); s.Int64() != 1 {
		t.Fatalf("serial %v", s)
	}

	// A new certificate, SIGHUP: new handshakes get it; the open
	// connection carries on.
	second := writeCert(t, certFile, keyFile, 2)
	b.signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(b.logs.String(), "TLS certificate reloaded") })
	if s := served(); s.Int64() != 2 {
		t.Fatalf("after SIGHUP: serial %v, want 2", s)
	}
	if resp, err := client.Post(ctx, trusting(second), b.HTTP+"/pub/tls", "", []byte("new cert"), nil); err != nil || resp.Status != 200 {
		t.Fatalf("POST with the new certificate: %v %v", resp, err)
	}
	if f, err := sub.Read(ctx); err != nil || string(f.Data) != "new cert" {
		t.Fatalf("the connection from before the reload: %q %v", f.Data, err)
	}

	// A broken file: the reload fails, the certificate in force stays.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	b.signal(syscall.SIGHUP)
	waitFor(t, "the failed reload", func() bool { return strings.Contains(b.logs.String(), "TLS certificate reload failed") })
	if s := served(); s.Int64() != 2 {
		t.Fatalf("after a failed reload: serial %v, want 2", s)
	}

	// Half a TLS configuration is a usage error.
	if code, out := serveOnce(t, nil, "--listen", "127.0.0.1:0", "--tls-cert", certFile); code != 2 || !strings.Contains(out, "--tls-cert: set without tls_key (--tls-key): give both, or neither") {
		t.Fatalf("only --tls-cert: %d %s", code, out)
	}
}

func TestThirdPartyClientWithTokenSubprotocol(t *testing.T) {
	ab := startAuthBroker(t)
	tok := ab.keys.Sign(t, "ES256", ab.keys.Claims("42", time.Hour, agentRights), "")
	// Node's ws fails a handshake whose answer names no subprotocol when it
	// offered some: the broker picks mercury.raw, never the token.
	nc := startNodeClient(t, ab.WS+"/sub/livesys/42", "--protocol", "mercury.raw", "--protocol", "mercury.token."+tok)
	ev := nc.next(t)
	if !ev.Open || ev.Protocol != "mercury.raw" {
		t.Fatalf("node client: %+v, want open with protocol mercury.raw", ev)
	}
	post(t, ab.HTTP+"/pub/livesys/42?token="+ab.keys.Sign(t, "HS256", ab.keys.Claims("x", time.Hour, map[string]any{"pub": true}), ""), "for agent 42")
	if got := nc.nextText(t); got != "for agent 42" {
		t.Fatalf("got %q", got)
	}
	// And a refused one reads the reason.
	nc = startNodeClient(t, ab.WS+"/sub/livesys/43", "--protocol", "mercury.raw", "--protocol", "mercury.token."+tok)
	if ev := nc.next(t); ev.Status != 403 || !strings.Contains(ev.Body, "sub on /livesys/43 is not allowed") {
		t.Fatalf("node client: %+v, want 403", ev)
	}
}

// TestMinionBridgeInsideServeWithAuthAndTLS: the bridge the broker runs
// itself publishes through the broker's own listener: with auth on it
// uses a key of its own, with TLS it trusts the broker's certificate.
func TestMinionBridgeInsideServeWithAuthAndTLS(t *testing.T) {
	miniontest.RequireMinion(t)
	db := minionDB(t)
	conf := durableConfig(t)
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("auth:\n  anonymous:\n    sub: [/audit]\n") // nobody may publish but the broker
	f.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, 7)
	b := startBrokerEnv(t, []string{"MERCURY_MINION_PG=" + db}, "--listen", "127.0.0.1:0", "--config", conf,
		"--data-dir", t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := client.NewHTTPClient(&tls.Config{RootCAs: pool})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := client.Dial(ctx, b.WS+"/sub/audit/minion?envelope=1", &client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.CloseNow()
	// An anonymous client may not publish there.
	if resp, err := client.Post(ctx, hc, b.HTTP+"/pub/audit/minion", "", []byte("{}"), nil); err != nil || resp.Status != 401 {
		t.Fatalf("anonymous POST: %v %v", resp, err)
	}
	var enq struct{ IDs []int64 }
	miniontest.Perl(t, db, &enq, "enqueue", "1", "0")
	f2, err := sub.Read(ctx)
	if err != nil {
		t.Fatalf("no event from the bridge: %v\n%s", err, b.logs)
	}
	var e minion.Event
	in, err := client.ParseIncoming(f2.Data)
	if err != nil || in.Message == nil || json.Unmarshal(in.Message.Data, &e) != nil || e.Type != "enqueued" {
		t.Fatalf("event %s: %v", f2.Data, err)
	}
}
