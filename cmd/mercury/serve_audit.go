package main

import (
	"context"
	"log/slog"

	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
)

// runAuditLogger runs the audit logger next to the broker, subscribed to
// the bridge's events through the broker's own endpoint and keeping them
// in the SQLite file audit.sqlite names.
func runAuditLogger(ctx context.Context, cfg *config.Config, self selfPublisher, logger *slog.Logger) (<-chan struct{}, error) {
	a, err := minion.NewSQLiteAuditor(cfg.AuditSQLite, minion.AuditOptions{
		Broker: self.url, Header: self.header, HTTPClient: self.client, Topic: cfg.MinionTopic,
		Logger: logger.With("audit", cfg.AuditSQLite),
	})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		logger.Info("audit logger starting", "sqlite", cfg.AuditSQLite, "topic", cfg.MinionTopic)
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("audit logger stopped", "err", err)
		}
	}()
	return done, nil
}
