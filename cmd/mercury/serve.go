package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/bus/minion"
	natsbus "github.com/mercury-broker/mercury/bus/nats"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/metrics"
)

func runServe(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("serve", "[flags]",
		"mercury serve                                  # 127.0.0.1:3000, no config file needed",
		"mercury serve --config mercury.yaml            # buses and schemas; see mercury.example.yaml",
		"mercury serve --listen :3000 --config mercury.yaml   # another address needs auth in the config …",
		"mercury serve --listen :3000 --allow-anonymous       # … or this: anyone who reaches it may do anything",
		"mercury serve --listen :443 --tls-cert cert.pem --tls-key key.pem --config mercury.yaml",
		"MERCURY_LISTEN=:3000 mercury serve             # every flag is also a MERCURY_ variable",
		"mercury serve --cluster nats://nats1:4222,nats://nats2:4222  # several brokers as one, on NATS JetStream",
	)
	flags := config.RegisterFlags(fs)
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return command.UsageError("unexpected argument %q", fs.Arg(0))
	}
	if err := refusePasswordFlag(fs, "minion-pg", "minion.pg", "MERCURY_MINION_PG"); err != nil {
		return err
	}
	file := flags.File(os.Getenv)
	load := func() (*config.Config, *web.Buses, error) {
		cfg, err := config.Load(file, os.Getenv, flags)
		if err != nil {
			return nil, nil, usageIfFlag(err)
		}
		policies, schemas, err := cfg.Compile()
		if err != nil {
			return nil, nil, err
		}
		return cfg, &web.Buses{Policies: policies, Schemas: schemas}, nil
	}
	cfg, buses, err := load()
	if err != nil {
		return err
	}
	logger, err := newLogger(io, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	setGCTarget()
	fileLimit, fileLimitKnown := raiseFileLimit(logger)
	if err := checkSettings(cfg); err != nil {
		return usageIfFlag(err)
	}
	if ignored := clusterIgnored(cfg); len(ignored) > 0 {
		logger.Warn("cluster.urls is empty: a single broker; these settings are not used", "settings", strings.Join(ignored, ","))
	}
	var self *selfAccess // the in-process bridge's credential
	if cfg.MinionPG != "" || cfg.MinionSQLite != "" || cfg.AuditSQLite != "" {
		if self, err = newSelfAccess(); err != nil {
			return err
		}
	}
	authn, err := cfg.Authenticator(self.keys()...)
	if err != nil {
		return err
	}
	var srv *web.Server
	var reload func() (*web.Buses, error)
	if file != "" {
		logger.Info("config loaded", "file", file, "buses", buses.String(), "auth", authn != nil)
		reload = func() (*web.Buses, error) {
			next, buses, err := load()
			if err != nil {
				return nil, err
			}
			a, err := next.Authenticator(self.keys()...)
			if err != nil {
				return nil, err
			}
			if a == nil && authn != nil {
				return nil, errors.New("the new configuration has no auth: turning auth off needs a restart")
			}
			if changed := config.Restart(cfg, next); len(changed) > 0 {
				logger.Warn("reload applies the buses and auth only; restart to apply the other changes", "settings", strings.Join(changed, ","))
			}
			srv.SetAuth(a) // new connections and requests; open ones keep their grant
			return buses, nil
		}
	}

	reg := metrics.New()
	web.Version = version
	var ready func() error
	bopts := broker.Options{QueueLimit: cfg.QueueLimit, MaxMemory: cfg.MaxMemory, Policies: buses.Policies, Logger: logger}
	if len(cfg.Cluster.URLs) > 0 {
		// Clustered: durable buses, history and queues live in JetStream;
		// nothing is kept on this broker's disk.
		opts := clusterOptions(cfg)
		opts.Logger = logger
		bp, err := natsbus.Connect(opts)
		if err != nil {
			return err
		}
		defer bp.Close()
		bopts.Backplane = bp
		reg.Counter("mercury_cluster_messages_received_total",
			"Messages this broker's cluster feed brought and decoded (those its subscribers and bus peers want).",
			func() float64 { return float64(bp.MessagesReceived()) })
	} else {
		st, err := openStore(cfg, buses.Policies, logger)
		if err != nil {
			return err
		}
		if st != nil {
			defer st.Close()
			bopts.Store = st
			st.OnSync(reg.ObserveSync)
			ready = st.Ready
		}
	}
	if fileLimitKnown {
		logConnectionCapacity(logger, fileLimit, bopts.Store != nil, cfg.MaxConnections)
	}
	b, err := broker.Open(bopts)
	if err != nil {
		return err
	}
	defer b.Close()
	trusted, _ := web.ParseTrustedProxies(cfg.TrustedProxies) // checked
	srv, err = web.New(b, web.Options{
		AllowOrigins:        cfg.AllowOrigins,
		AllowedHosts:        cfg.AllowedHosts,
		TrustedProxies:      trusted,
		MaxMessageSize:      cfg.MaxMessageSize,
		MaxConnections:      cfg.MaxConnections,
		MaxConnectionsPerIP: noLimit(cfg.MaxConnectionsPerIP),
		PublishRate:         float64(cfg.PublishRate),
		PublishBurst:        cfg.PublishBurst,
		MaxJSONDepth:        cfg.MaxJSONDepth,
		SocketSendBuffer:    noLimit(cfg.SocketSendBuffer),
		IdleTimeout:         cfg.IdleTimeout,
		RequestTimeout:      cfg.HandshakeTimeout,
		Compression:         cfg.Compression,
		Topics:              broker.TopicLimits{MaxLength: cfg.MaxTopicLength, MaxDepth: cfg.MaxTopicDepth},
		OutgoingQueue:       cfg.OutgoingQueue,
		PingInterval:        cfg.PingInterval,
		WriteCoalesce:       cfg.WriteCoalesce,
		Logger:              logger,
		LogBodies:           cfg.LogBodies,
		Metrics:             reg,
		Ready:               ready,
		Buses:               buses,
		Reload:              reload,
		Auth:                authn,
		AdminSeparate:       cfg.AdminListen != "",
	})
	if err != nil {
		return command.UsageError("%v", err)
	}
	var certs *certReloader
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, logger); err != nil {
			return err
		}
	}
	var proxies []netip.Prefix // from whom the listeners take the PROXY protocol
	if cfg.ProxyProtocol {
		proxies = trusted
	}
	ln, err := listen(cfg.Listen, "listen", certs, proxies, authn != nil, cfg.AllowAnonymous)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = listen(cfg.AdminListen, "admin-listen", certs, proxies, authn != nil, cfg.AllowAnonymous); err != nil {
			ln.Close()
			return err
		}
	}
	if cfg.Pprof != "" {
		stop, err := servePprof(cfg.Pprof, srv.AdminOnly, authn != nil, cfg.AllowAnonymous, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	var onHUP func()
	if certs != nil {
		onHUP = certs.reloadLogged
	}
	auth := "configured"
	if authn == nil {
		auth = "none: every client may do everything"
		if !isLoopback(ln.Addr()) {
			auth += " (--allow-anonymous)"
		}
	}
	if cfg.MinionPG != "" || cfg.MinionSQLite != "" {
		// The bridge stops as the server starts shutting down: what it had
		// not seen confirmed stays in the outbox for the next start.
		bridgeCtx, stopBridge := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		done := runMinionBridge(bridgeCtx, cfg, self.publisher(ln, certs), logger, reg)
		defer func() { stopBridge(); <-done }()
	}
	if cfg.AuditSQLite != "" {
		auditCtx, stopAudit := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		done, err := runAuditLogger(auditCtx, cfg, self.publisher(ln, certs), logger)
		if err != nil {
			stopAudit()
			return err
		}
		defer func() { stopAudit(); <-done }()
	}
	return serveUntilSignal(ctx, listeners{main: ln, admin: adminLn, handshake: cfg.HandshakeTimeout, onHUP: onHUP, auth: auth}, srv, logger)
}

// usageIfFlag makes a bad setting given as a flag a usage error (exit 2);
// one from the file or the environment exits 1.
func usageIfFlag(err error) error {
	var ce *config.Error
	if errors.As(err, &ce) && ce.Flag {
		return command.UsageError("%v", err)
	}
	return err
}

// listen listens on addr, with TLS when certs are given and the PROXY
// protocol from proxies, and refuses an exposed address without auth (see
// checkExposure).
func listen(addr, flag string, certs *certReloader, proxies []netip.Prefix, authConfigured, allowAnonymous bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen (--%s): %w", flag, err)
	}
	if err := checkExposure(ln, addr, flag, authConfigured, allowAnonymous); err != nil {
		ln.Close()
		return nil, err
	}
	if len(proxies) > 0 {
		ln = web.ProxyProtocolListener(ln, proxies)
	}
	if certs != nil {
		ln = tlsListener{tls.NewListener(ln, certs.config())}
	}
	return ln, nil
}

// noLimit maps the config's 0 (no limit) to web's negative.
func noLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// tlsListener marks a listener that serves TLS.
type tlsListener struct{ net.Listener }

// listenURL is how clients reach ln.
func listenURL(ln net.Listener) string {
	if _, ok := ln.(tlsListener); ok {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// listeners is what serveUntilSignal serves.
type listeners struct {
	main, admin net.Listener // admin: nil without --admin-listen
	handshake   time.Duration
	onHUP       func() // besides reloading the buses and auth
	auth        string // what the listening line says of auth
}

// runMinionBridge runs the Minion audit bridge next to the broker,
// publishing through the broker's own HTTP endpoint, so its events take
// the same path as anyone's: the bus's schema, durability, confirms.
func runMinionBridge(ctx context.Context, cfg *config.Config, self selfPublisher, logger *slog.Logger, reg *metrics.Metrics) <-chan struct{} {
	opts := minion.Options{
		Schema:       cfg.MinionSchema,
		Topic:        cfg.MinionTopic,
		MaxEventSize: int(cfg.MaxMessageSize),
		Logger:       logger.With("bridge", "minion"),
	}
	if cfg.MinionCompatBus != "" {
		opts.Compat = &minion.HTTPPublisher{Broker: self.url, Pattern: "bus", Header: self.header, Client: self.client}
		opts.CompatTopic = cfg.MinionCompatBus
	}
	pub := &minion.HTTPPublisher{Broker: self.url, Concurrency: 8, Header: self.header, Client: self.client}
	bridge := minion.New(cfg.MinionPG, pub, opts)
	if cfg.MinionSQLite != "" {
		bridge = minion.NewSQLite(cfg.MinionSQLite, pub, opts)
	}
	reg.Gauge("mercury_bridge_lag_seconds", "Age of the oldest Minion change waiting in the bridge's outbox, at the last measure (0: none waits).",
		func() float64 { return bridge.Stats().Lag.OldestAge.Seconds() })
	reg.Gauge("mercury_bridge_outbox_depth", "Minion changes waiting in the bridge's outbox, at the last measure.",
		func() float64 { return float64(bridge.Stats().Lag.Depth) })
	reg.Gauge("mercury_bridge_published", "Events the bridge has had confirmed since the broker started.",
		func() float64 { return float64(bridge.Stats().Published) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		logger.Info("minion bridge starting", "topic", cfg.MinionTopic)
		if err := bridge.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("minion bridge stopped", "err", err)
		}
	}()
	return done
}

// openStore opens the durable store in the data directory when a bus is
// durable, and returns nil otherwise: a broker without durable buses
// writes no file.
func openStore(cfg *config.Config, policies *broker.Policies, logger *slog.Logger) (*store.Durable, error) {
	durable := false
	for _, p := range policies.All() {
		durable = durable || p.Durable
	}
	if !durable {
		return nil, nil
	}
	st, err := store.OpenDurable(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("failed to open the data directory %s: %w", cfg.DataDir, err)
	}
	logger.Info("store open", "data_dir", cfg.DataDir)
	return st, nil
}

// httpIdleTimeout closes kept-alive HTTP connections that send no next
// request.
const httpIdleTimeout = 2 * time.Minute

// serveUntilSignal serves on ln until SIGINT or SIGTERM (or ctx ends),
// then shuts down gracefully: stop accepting, close WebSockets with 1001,
// let HTTP requests in flight finish. SIGHUP reloads the buses.
func serveUntilSignal(ctx context.Context, lns listeners, srv *web.Server, logger *slog.Logger) error {
	ln, adminLn := lns.main, lns.admin
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloadCtx, stopReloads := context.WithCancel(ctx)
	var reloads sync.WaitGroup
	defer func() { stopReloads(); reloads.Wait() }()
	reloads.Go(func() {
		for {
			select {
			case <-reloadCtx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: reloading")
				if lns.onHUP != nil {
					lns.onHUP()
				}
				// Reload logs its outcome, but for this one.
				if _, err := srv.Reload(); errors.Is(err, web.ErrNoReload) {
					logger.Warn("SIGHUP ignored", "reason", err)
				}
			}
		}
	})
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ConnContext:       srv.ConnContext, // socket send buffers
			ReadHeaderTimeout: lns.handshake,
			// A kept-alive HTTP connection with no request for this long
			// is closed: idle clients cannot hold sockets for ever.
			// (WebSockets and event streams are not idle in this sense.)
			IdleTimeout:    httpIdleTimeout,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		}
	}
	hs := newServer(srv)
	logger.Info("mercury listening", "addr", listenURL(ln), "version", version, "auth", lns.auth)
	if strings.Contains(lns.auth, "--allow-anonymous") {
		logger.Warn("no auth configured and --allow-anonymous: every client that reaches the broker may do everything", "listen", ln.Addr().String())
	}
	served := make(chan error, 2)
	go func() { served <- hs.Serve(ln) }()
	var admin *http.Server
	if adminLn != nil {
		admin = newServer(srv.AdminHandler())
		logger.Info("admin API listening", "addr", listenURL(adminLn))
		go func() { served <- admin.Serve(adminLn) }()
	}
	select {
	case err := <-served:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { hs.Shutdown(shutdownCtx) })
	if admin != nil {
		wg.Go(func() { admin.Shutdown(shutdownCtx) })
	}
	wg.Go(func() { srv.Shutdown(shutdownCtx) })
	wg.Wait()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if admin != nil {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	logger.Info("stopped")
	return nil
}

// newLogger makes the logger; level and format were checked by config.
func newLogger(io command.Stdio, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, command.UsageError("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(io.Err, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(io.Err, opts)), nil
	}
	return nil, command.UsageError("--log-format %q: want text or json", format)
}

// brokerGCPercent is the garbage collector's target for a broker: its heap
// is mostly long-lived connection state and a delivery allocates next to
// nothing, so collecting at half the usual growth costs no measurable CPU
// and keeps idle connections about 8% smaller (README, "Performance").
const brokerGCPercent = 50

// setGCTarget applies brokerGCPercent unless GOGC says otherwise.
func setGCTarget() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(brokerGCPercent)
	}
}
