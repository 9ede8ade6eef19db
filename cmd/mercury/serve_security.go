package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
)

// checkExposure refuses to serve everyone everything on an address other
// machines can reach: with no auth configured, only a loopback listener
// may start, unless --allow-anonymous says that is meant.
func checkExposure(ln net.Listener, addr, flag string, authConfigured, allowAnonymous bool) error {
	if authConfigured || allowAnonymous || isLoopback(ln.Addr()) {
		return nil
	}
	return usageError("refusing to serve %s (--%s) without authentication: anyone who can reach it could read and publish everything. "+
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

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, usageError("--tls-cert and --tls-key go together: give both, or neither")
	}
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
