package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/auth"
)

// checkExposure refuses to serve everyone everything on an address other
// machines can reach: with no auth configured, only a loopback listener
// may start, unless --allow-anonymous says that is meant.
func checkExposure(ln net.Listener, addr, flag string, authConfigured, allowAnonymous bool) error {
	if authConfigured || allowAnonymous || isLoopback(ln.Addr()) {
		return nil
	}
	return command.UsageError("refusing to serve %s (--%s) without authentication: anyone who can reach it could read and publish everything. "+
		"Configure auth (tokens, API keys or anonymous rights: see SECURITY.md and mercury.example.yaml), listen on loopback (127.0.0.1), "+
		"or pass --allow-anonymous (MERCURY_ALLOW_ANONYMOUS=true) if that is what you want", addr, flag)
}

// isLoopback reports whether addr is on the loopback interface only.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// certReloader serves a TLS certificate that SIGHUP re-reads: handshakes
// after a reload get the new one, a failed reload keeps the old one.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu   sync.RWMutex
	cert *tls.Certificate
}

// newCertReloader loads the pair; checkSettings has seen both given.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the certificate and key again.
func (r *certReloader) reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("failed to load the TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert = &cert
	r.mu.Unlock()
	return nil
}

// reloadLogged reloads on SIGHUP and says how it went.
func (r *certReloader) reloadLogged() {
	if err := r.reload(); err != nil {
		r.log.Error("TLS certificate reload failed; the one in force is kept", "err", err)
		return
	}
	r.log.Info("TLS certificate reloaded", "cert", r.certFile)
}

func (r *certReloader) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}, // WebSocket needs HTTP/1.1
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return r.cert, nil
		},
	}
}

// selfAccess is how the broker's own in-process clients (the Minion
// bridge) reach it through its listener when auth is on: an API key made
// at start, held in memory only, that may publish and send on buses.
type selfAccess struct {
	key    string
	apiKey auth.APIKey
}

func newSelfAccess() (*selfAccess, error) {
	key := auth.GenerateKey()
	hash, err := auth.HashKey(key)
	if err != nil {
		return nil, err
	}
	spec, err := auth.ParseSpec(map[string]any{"pub": true, "bus": true, "sub": true}) // sub: the in-process audit logger
	if err != nil {
		return nil, err
	}
	rights, err := spec.Expand(nil)
	if err != nil {
		return nil, err
	}
	k, err := auth.NewAPIKey("mercury (in-process)", hash, rights)
	if err != nil {
		return nil, err
	}
	return &selfAccess{key: key, apiKey: k}, nil
}

// keys returns the API key to add to the configured ones.
func (s *selfAccess) keys() []auth.APIKey {
	if s == nil {
		return nil
	}
	return []auth.APIKey{s.apiKey}
}

// selfPublisher is where and how an in-process client publishes.
type selfPublisher struct {
	url    string
	header http.Header
	client *http.Client
}

// publisher returns how to reach the broker on ln: with the key, and over
// TLS trusting exactly the certificate the broker serves.
func (s *selfAccess) publisher(ln net.Listener, certs *certReloader) selfPublisher {
	p := selfPublisher{url: listenURL(ln), client: http.DefaultClient}
	if s != nil {
		p.header = http.Header{"Authorization": {"Bearer " + s.key}}
	}
	if certs != nil {
		p.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			// The name check is replaced by an exact match of the served
			// certificate: the broker calls itself on a loopback address.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				certs.mu.RLock()
				want := certs.cert.Certificate[0]
				certs.mu.RUnlock()
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
					return errors.New("the broker's own certificate was not served")
				}
				return nil
			},
		}}}
	}
	return p
}
