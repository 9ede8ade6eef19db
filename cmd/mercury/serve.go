package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web"
)

// stringList is a repeatable flag that also takes comma-separated values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runServe(ctx context.Context, args []string, io stdio) error {
	fs := newFlagSet("serve", "[flags]",
		"mercury serve                                  # 127.0.0.1:3000, no config file needed",
		"mercury serve --listen :3000 --allow-origin https://dash.example.com",
	)
	listen := fs.String("listen", "127.0.0.1:3000", "`HOST:PORT` to listen on (\":3000\" for every interface)")
	configFile := fs.String("config", "", "YAML config `FILE`")
	var origins stringList
	fs.Var(&origins, "allow-origin", "browser origin `PATTERN` allowed to connect, e.g. example.com, *.example.com, https://example.com (repeatable)")
	maxMessage := fs.Int64("max-message-size", web.DefaultMaxMessageSize, "largest message in `BYTES`")
	maxConns := fs.Int("max-connections", web.DefaultMaxConnections, "most concurrent WebSocket connections")
	outQueue := fs.Int("outgoing-queue", web.DefaultOutgoingQueue, "`BYTES` waiting for one connection before it is closed as a slow consumer")
	queueLimit := fs.Int("queue-limit", broker.DefaultQueueLimit, "messages waiting in one push/pull queue")
	pingInterval := fs.Duration("ping-interval", web.DefaultPingInterval, "how often each connection is pinged")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on `HOST:PORT`, for 'go tool pprof'; off by default, keep it on loopback")
	if err := parseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *configFile != "" {
		return usageError("--config: config files are not supported yet")
	}
	logger, err := newLogger(io, *logLevel, *logFormat)
	if err != nil {
		return err
	}

	b := broker.New(broker.Options{QueueLimit: *queueLimit})
	srv, err := web.New(b, web.Options{
		AllowOrigins:   origins,
		MaxMessageSize: *maxMessage,
		MaxConnections: *maxConns,
		OutgoingQueue:  *outQueue,
		PingInterval:   *pingInterval,
		Logger:         logger,
	})
	if err != nil {
		return usageError("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	if *pprofAddr != "" {
		stop, err := servePprof(*pprofAddr, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	return serveUntilSignal(ctx, ln, srv, logger)
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
// let HTTP requests in flight finish.
func serveUntilSignal(ctx context.Context, ln net.Listener, srv *web.Server, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
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
