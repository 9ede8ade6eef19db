package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
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
	var sub string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:] // flags after the subcommand are flags too
	}
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	if sub != "check" || fs.NArg() != 1 {
		fs.Usage()
		return command.UsageError("want: mercury config check FILE")
	}
	file := fs.Arg(0)
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
		return err
	}
	fmt.Fprintf(io.Out, "%s: ok, %d buses, %d with a schema\n", file, len(cfg.Buses), len(schemas.Buses()))
	if authn != nil {
		fmt.Fprintf(io.Out, "  auth: %s\n", authn)
	}
	if c := cfg.Cluster; len(c.URLs) > 0 {
		fmt.Fprintf(io.Out, "  cluster: %s on %s (not contacted)\n", clusterOptions(cfg).Name, strings.Join(c.URLs, ", "))
	} else if ignored := clusterIgnored(cfg); len(ignored) > 0 {
		fmt.Fprintf(io.Out, "  cluster: none, as cluster.urls is empty: %s not used\n", strings.Join(ignored, ", "))
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
// config check both run it. Each error names the setting and where it was
// set (a *config.Error).
func checkSettings(cfg *config.Config) error {
	if cfg.MinionPG != "" && cfg.MinionSQLite != "" {
		return cfg.Invalid("minion.sqlite", "minion.pg is set too: configure one database for the bridge")
	}
	trusted, err := web.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return cfg.Invalid("trusted_proxies", "%v", err)
	}
	if cfg.ProxyProtocol && len(trusted) == 0 {
		return cfg.Invalid("proxy_protocol", "needs trusted_proxies: the proxies whose PROXY headers to believe")
	}
	switch {
	case cfg.TLSCert != "" && cfg.TLSKey != "":
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return cfg.Invalid("tls_cert", "failed to load the TLS certificate %s and key %s: %v", cfg.TLSCert, cfg.TLSKey, err)
		}
	case cfg.TLSCert != "":
		return cfg.Invalid("tls_cert", "set without tls_key (--tls-key): give both, or neither")
	case cfg.TLSKey != "":
		return cfg.Invalid("tls_key", "set without tls_cert (--tls-cert): give both, or neither")
	}
	if len(cfg.Cluster.URLs) > 0 {
		var oe *natsbus.OptionError
		if err := clusterOptions(cfg).Check(); errors.As(err, &oe) {
			return cfg.Invalid(clusterKeys[oe.Option], "%v", oe.Err)
		} else if err != nil {
			return cfg.Invalid("cluster.urls", "%v", err)
		}
	}
	return nil
}

// clusterKeys are the settings behind natsbus.Options' fields.
var clusterKeys = map[string]string{
	"Name": "cluster.name", "CredsFile": "cluster.creds",
	"TLSCA": "cluster.tls.ca", "TLSCert": "cluster.tls.cert", "TLSKey": "cluster.tls.key",
}

// clusterIgnored lists the cluster settings given without cluster.urls,
// which leave them unused.
func clusterIgnored(cfg *config.Config) []string {
	if len(cfg.Cluster.URLs) > 0 {
		return nil
	}
	return slices.DeleteFunc(cfg.SetUnder("cluster."), func(key string) bool { return key == "cluster.urls" })
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
