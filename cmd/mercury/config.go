package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
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
	fmt.Fprintf(io.Out, "%s: ok, %d buses, %d with a schema\n", file, len(cfg.Buses), len(schemas.Buses()))
	if authn != nil {
		fmt.Fprintf(io.Out, "  auth: %s\n", authn)
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
