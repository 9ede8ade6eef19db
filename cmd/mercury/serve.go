package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/broker/store"
	"github.com/mercury-broker/mercury/bus/minion"
	natsbus "github.com/mercury-broker/mercury/bus/nats"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
	"github.com/mercury-broker/mercury/web"
)

func runServe(ctx context.Context, args []string, io stdio) error {
	fs := newFlagSet("serve", "[flags]",
		"mercury serve                                  # 127.0.0.1:3000, no config file needed",
		"mercury serve --config mercury.yaml            # buses and schemas; see mercury.example.yaml",
		"mercury serve --listen :3000 --allow-origin https://dash.example.com",
		"MERCURY_LISTEN=:3000 mercury serve             # every flag is also a MERCURY_ variable",
		"mercury serve --cluster nats://nats1:4222,nats://nats2:4222  # several brokers as one, on NATS JetStream",
	)
	flags := config.RegisterFlags(fs)
	if err := parseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	file := flags.File(os.Getenv)
	load := func() (*config.Config, *web.Buses, error) {
		cfg, err := config.Load(file, os.Getenv, flags)
		if err != nil {
			var ce *config.Error
			if errors.As(err, &ce) && ce.Flag {
				return nil, nil, usageError("%v", err)
			}
			return nil, nil, err
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
	var reload func() (*web.Buses, error)
	if file != "" {
		logger.Info("config loaded", "file", file, "buses", buses.String())
		reload = func() (*web.Buses, error) {
			next, buses, err := load()
			if err != nil {
				return nil, err
			}
			if changed := config.Restart(cfg, next); len(changed) > 0 {
				logger.Warn("reload applies the buses only; restart to apply the other changes", "settings", strings.Join(changed, ","))
			}
			return buses, nil
		}
	}

	bopts := broker.Options{QueueLimit: cfg.QueueLimit, Policies: buses.Policies, Logger: logger}
	if len(cfg.Cluster.URLs) > 0 {
		// Clustered: durable buses, history and queues live in JetStream;
		// nothing is kept on this broker's disk.
		c := cfg.Cluster
		bp, err := natsbus.Connect(natsbus.Options{
			URLs: c.URLs, Name: c.Name, CredsFile: c.Creds, TLSCA: c.TLSCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
			Replicas: c.Replicas, MaxBytes: c.MaxBytes, QueueLimit: cfg.QueueLimit, Logger: logger,
		})
		if err != nil {
			return err
		}
		defer bp.Close()
		bopts.Backplane = bp
	} else {
		st, err := openStore(cfg, buses.Policies, logger)
		if err != nil {
			return err
		}
		if st != nil {
			defer st.Close()
			bopts.Store = st
		}
	}
	b, err := broker.Open(bopts)
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := web.New(b, web.Options{
		AllowOrigins:   cfg.AllowOrigins,
		MaxMessageSize: cfg.MaxMessageSize,
		MaxConnections: cfg.MaxConnections,
		OutgoingQueue:  cfg.OutgoingQueue,
		PingInterval:   cfg.PingInterval,
		Logger:         logger,
		Buses:          buses,
		Reload:         reload,
	})
	if err != nil {
		return usageError("%v", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	if cfg.Pprof != "" {
		stop, err := servePprof(cfg.Pprof, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.MinionPG != "" {
		// The bridge stops as the server starts shutting down: what it had
		// not seen confirmed stays in the outbox for the next start.
		bridgeCtx, stopBridge := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		done := runMinionBridge(bridgeCtx, cfg, "http://"+ln.Addr().String(), logger)
		defer func() { stopBridge(); <-done }()
	}
	return serveUntilSignal(ctx, ln, srv, logger)
}

// runMinionBridge runs the Minion audit bridge next to the broker,
// publishing through the broker's own HTTP endpoint, so its events take
// the same path as anyone's: the bus's schema, durability, confirms.
func runMinionBridge(ctx context.Context, cfg *config.Config, self string, logger *slog.Logger) <-chan struct{} {
	opts := minion.Options{
		Schema:       cfg.MinionSchema,
		Topic:        cfg.MinionTopic,
		MaxEventSize: int(cfg.MaxMessageSize),
		Logger:       logger.With("bridge", "minion"),
	}
	if cfg.MinionCompatBus != "" {
		opts.Compat = &minion.HTTPPublisher{Broker: self, Pattern: "bus"}
		opts.CompatTopic = cfg.MinionCompatBus
	}
	bridge := minion.New(cfg.MinionPG, &minion.HTTPPublisher{Broker: self, Concurrency: 8}, opts)
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

// servePprof serves the runtime profiles on addr, apart from the broker's
// own listener, and returns the function that stops it.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen for --pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("profiler listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	go hs.Serve(ln)
	return func() { hs.Close() }, nil
}

// serveUntilSignal serves on ln until SIGINT or SIGTERM (or ctx ends),
// then shuts down gracefully: stop accepting, close WebSockets with 1001,
// let HTTP requests in flight finish. SIGHUP reloads the buses.
func serveUntilSignal(ctx context.Context, ln net.Listener, srv *web.Server, logger *slog.Logger) error {
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
				// Reload logs its outcome, but for this one.
				if _, err := srv.Reload(); errors.Is(err, web.ErrNoReload) {
					logger.Warn("SIGHUP ignored", "reason", err)
				}
			}
		}
	})
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	logger.Info("mercury listening", "addr", "http://"+ln.Addr().String(), "version", version)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
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
	wg.Go(func() { srv.Shutdown(shutdownCtx) })
	wg.Wait()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// newLogger makes the logger; level and format were checked by config.
func newLogger(io stdio, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(io.err, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(io.err, opts)), nil
	}
	return nil, usageError("--log-format %q: want text or json", format)
}
