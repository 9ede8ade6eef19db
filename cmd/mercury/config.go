package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mercury-broker/mercury/broker"
	natsbus "github.com/mercury-broker/mercury/bus/nats"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
	"github.com/mercury-broker/mercury/web"
)

// runConfig runs "mercury config check FILE": it loads the file and every
// schema it names, as serve would, and says what it found or what is
// wrong.
func runConfig(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("config", "check FILE",
		"mercury config check mercury.yaml    # exit 0 and a summary, or 1 and the reason")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if fs.NArg() != 2 || fs.Arg(0) != "check" {
		fs.Usage()
		return command.UsageError("want: mercury config check FILE")
	}
	file := fs.Arg(1)
	cfg, err := config.Load(file, nil, nil)
	if err != nil {
		return err
	}
	_, schemas, err := cfg.Compile()
	if err != nil {
		return err
	}
	authn, err := cfg.Authenticator()
	if err != nil {
		return err
	}
	if err := checkSettings(cfg); err != nil {
		var usage *command.ExitError
		if errors.As(err, &usage) {
			err = usage.Err // a mistake in the file: exit 1
		}
		return err
	}
	fmt.Fprintf(io.Out, "%s: ok, %d buses, %d with a schema\n", file, len(cfg.Buses), len(schemas.Buses()))
	if authn != nil {
		fmt.Fprintf(io.Out, "  auth: %s\n", authn)
	}
	if c := cfg.Cluster; len(c.URLs) > 0 {
		fmt.Fprintf(io.Out, "  cluster: %s on %s (not contacted)\n", clusterOptions(cfg).Name, strings.Join(c.URLs, ", "))
	}
	for _, b := range cfg.Buses {
		var what []string
		if b.SchemaName != "" {
			what = append(what, "schema "+strings.Join(schemas.Documents(string(b.Bus)), " + "))
		}
		pol := broker.Policy{Bus: b.Bus, History: b.History, Durable: b.Durable}
		if h := pol.EffectiveHistory(); h.Messages > 0 || h.Age > 0 {
			what = append(what, fmt.Sprintf("history %d messages / %v", h.Messages, h.Age))
		}
		if b.Durable {
			what = append(what, "durable")
		}
		if b.Queue != (broker.QueuePolicy{}) {
			q := b.Queue.WithDefaults(cfg.QueueLimit)
			what = append(what, fmt.Sprintf("queue limit %d, max_attempts %d, ack_timeout %v, ttl %v", q.Limit, q.MaxAttempts, q.AckTimeout, q.TTL))
		}
		if len(what) == 0 {
			what = append(what, "accepts anything")
		}
		fmt.Fprintf(io.Out, "  %-20s %s\n", b.Bus, strings.Join(what, ", "))
	}
	return nil
}

// checkSettings reports what in cfg would stop serve before it listens,
// short of what needs the network or the data directory: serve and
// config check both run it.
func checkSettings(cfg *config.Config) error {
	if cfg.MinionPG != "" && cfg.MinionSQLite != "" {
		return fmt.Errorf("minion.pg and minion.sqlite: configure one database for the bridge")
	}
	trusted, err := web.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return command.UsageError("trusted_proxies: %v", err)
	}
	if cfg.ProxyProtocol && len(trusted) == 0 {
		return command.UsageError("proxy_protocol needs trusted_proxies: the proxies whose PROXY headers to believe")
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if _, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, nil); err != nil {
			return err
		}
	}
	if len(cfg.Cluster.URLs) > 0 {
		if err := clusterOptions(cfg).Check(); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// clusterOptions are the NATS backplane's options from cfg, without a
// logger.
func clusterOptions(cfg *config.Config) natsbus.Options {
	c := cfg.Cluster
	return natsbus.Options{
		URLs: c.URLs, Name: c.Name, CredsFile: c.Creds, TLSCA: c.TLSCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
		Replicas: c.Replicas, MaxBytes: c.MaxBytes, QueueLimit: cfg.QueueLimit,
	}
}
