package minion

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// auditDB is the audit log over one open database, as a session of the
// Auditor uses it.
type auditDB interface {
	install(ctx context.Context) error
	cursor(ctx context.Context, topic string) (uint64, error)
	store(ctx context.Context, topic string, msgs []Received) (int, error)
	gap(ctx context.Context, topic string, from, to uint64) error
	close(ctx context.Context)
}

// pgAuditDB is the audit log in a PostgreSQL schema.
type pgAuditDB struct {
	conn *pgx.Conn
	log  *AuditLog
}

var _ auditDB = (*pgAuditDB)(nil)

func (p *pgAuditDB) install(ctx context.Context) error { return p.log.Install(ctx, p.conn) }
func (p *pgAuditDB) cursor(ctx context.Context, topic string) (uint64, error) {
	return p.log.Cursor(ctx, p.conn, topic)
}
func (p *pgAuditDB) store(ctx context.Context, topic string, msgs []Received) (int, error) {
	return p.log.Store(ctx, p.conn, topic, msgs)
}
func (p *pgAuditDB) gap(ctx context.Context, topic string, from, to uint64) error {
	return p.log.Gap(ctx, p.conn, topic, from, to)
}
func (p *pgAuditDB) close(ctx context.Context) { p.conn.Close(ctx) }
