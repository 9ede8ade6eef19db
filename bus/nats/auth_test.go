package nats

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/test/syncbuf"
)

// startServer runs one embedded JetStream server with opts filled in.
func startServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s
}

// roundTrip checks a broker on bp publishes and receives.
func roundTrip(t *testing.T, bp *Backplane) {
	t.Helper()
	b, err := broker.Open(broker.Options{Backplane: bp, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := &recorder{}
	defer b.Subscribe("/a", r)()
	if err := b.Publish(msg("/a/b", "hello")); err != nil {
		t.Fatal(err)
	}
	if got := payloads(r.waitN(t, 1)); fmt.Sprint(got) != "[hello]" {
		t.Fatalf("got %v", got)
	}
}

// TestTLS: a NATS server that wants TLS and client certificates; the
// backplane verifies it with the CA and presents its certificate.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	file := func(name string) string { return filepath.Join(dir, name) }
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: file("server.pem"), KeyFile: file("server-key.pem"),
		CaFile: file("ca.pem"), Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc})
	url := fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)

	bp, err := Connect(Options{URLs: []string{url}, Logger: testLogger(), Replicas: 1,
		TLSCA: file("ca.pem"), TLSCert: file("client.pem"), TLSKey: file("client-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close()
	roundTrip(t, bp)

	if bp, err := Connect(Options{URLs: []string{url}, Logger: testLogger(), TLSCA: file("ca.pem")}); err == nil {
		bp.Close()
		t.Fatal("connected without a client certificate")
	}
	if _, err := Connect(Options{URLs: []string{url}, TLSCert: file("client.pem")}); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}

// newCert writes NAME.pem and NAME-key.pem, signed by parent (self-signed
// when nil), for 127.0.0.1.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestCredentials: a NATS server in operator mode (JWTs); the backplane
// authenticates with a credentials file, and is refused without one.
func TestCredentials(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opk, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opk)
	oc.Name = "mercury-test"
	ojwt, err := oc.Encode(okp)
	must(err)
	operator, err := jwt.DecodeOperatorClaims(ojwt)
	must(err)

	akp, err := nkeys.CreateAccount()
	must(err)
	apk, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apk)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	must(err)

	ukp, err := nkeys.CreateUser()
	must(err)
	upk, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upk)
	ujwt, err := uc.Encode(akp)
	must(err)
	seed, err := ukp.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	must(err)
	credsFile := filepath.Join(t.TempDir(), "mercury.creds")
	must(os.WriteFile(credsFile, creds, 0o600))

	// The server's own account, which operator mode needs.
	skp, err := nkeys.CreateAccount()
	must(err)
	spk, _ := skp.PublicKey()
	sjwt, err := jwt.NewAccountClaims(spk).Encode(okp)
	must(err)

	resolver := &server.MemAccResolver{}
	must(resolver.Store(apk, ajwt))
	must(resolver.Store(spk, sjwt))
	s := startServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{operator}, AccountResolver: resolver,
		SystemAccount: spk})
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)

	bp, err := Connect(Options{URLs: []string{url}, CredsFile: credsFile, Logger: testLogger()})
	must(err)
	defer bp.Close()
	roundTrip(t, bp)

	if bp, err := Connect(Options{URLs: []string{url}, Logger: testLogger()}); err == nil {
		bp.Close()
		t.Fatal("connected without credentials")
	}
}

// Check finds what would make Connect fail before it reaches NATS.
func TestOptionsCheck(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (Options{}).Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		name         string
		opts         Options
		option, want string
	}{
		{"name", Options{Name: "Fleet"}, "Name", `a cluster name is 1 to 32 lower-case letters, digits, '-' or '_', got "Fleet"`},
		{"no credentials file", Options{CredsFile: filepath.Join(dir, "gone.creds")}, "CredsFile", "credentials file " + filepath.Join(dir, "gone.creds") + ": open"},
		{"credentials without a seed", Options{CredsFile: garbage}, "CredsFile", "credentials file " + garbage + ": nkeys: no nkey seed found"},
		{"certificate without a key", Options{TLSCert: garbage}, "TLSKey", "needs both its file and its key file"},
		{"key without a certificate", Options{TLSKey: garbage}, "TLSCert", "needs both its file and its key file"},
		{"certificate not PEM", Options{TLSCert: garbage, TLSKey: garbage}, "TLSCert", "error loading client certificate"},
		{"CA not PEM", Options{TLSCA: garbage}, "TLSCA", "failed to parse root certificate from"},
	} {
		err := c.opts.Check()
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != c.option || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q about %s", c.name, err, c.want, c.option)
			continue
		}
		if _, cerr := Connect(c.opts); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s: Connect says %v, Check %v", c.name, cerr, err)
		}
	}
}

// A Connect that fails after connecting (here: no JetStream) says why,
// and nothing about losing NATS: it closed the connection itself.
func TestConnectFailureIsNoLostNATS(t *testing.T) {
	s := startServer(t, &server.Options{})
	s.DisableJetStream()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	bp, err := Connect(Options{URLs: []string{url}, Logger: log, Timeout: 2 * time.Second})
	if err == nil {
		bp.Close()
		t.Fatal("connected to a server without JetStream")
	}
	if !strings.Contains(err.Error(), "JetStream") {
		t.Errorf("error: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the client's handlers run on a goroutine of their own
	if strings.Contains(logs.String(), "lost NATS") {
		t.Errorf("a failed Connect logged a lost connection:\n%s", logs.String())
	}
}
