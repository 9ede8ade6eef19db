package minion

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSource is the outbox of a PostgreSQL schema, read over one connection.
type pgSource struct {
	conn     *pgx.Conn
	outbox   *Outbox
	instance string
}

var _ source = (*pgSource)(nil)

func (p *pgSource) Next(ctx context.Context, limit int) ([]Change, error) {
	return p.outbox.Next(ctx, p.conn, limit)
}

func (p *pgSource) Lag(ctx context.Context) (Lag, error) { return p.outbox.Lag(ctx, p.conn) }

func (p *pgSource) Ack(ctx context.Context, ids []int64, c Change, seq uint64) error {
	bridgeTable := pgx.Identifier{p.outbox.schema, "mercury_minion_bridge"}.Sanitize()
	return pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if err := p.outbox.Delete(ctx, tx, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+bridgeTable+` AS b (name, instance, last_event_id, last_order_key,
				last_outbox_id, last_seq, last_change_time, published, updated)
			VALUES ('bridge', $1, $2::UUID, $3::TEXT::XID8, $4, $5, $6, $7, now())
			ON CONFLICT (name) DO UPDATE SET instance = EXCLUDED.instance, last_event_id = EXCLUDED.last_event_id,
				last_order_key = EXCLUDED.last_order_key, last_outbox_id = EXCLUDED.last_outbox_id,
				last_seq = EXCLUDED.last_seq, last_change_time = EXCLUDED.last_change_time,
				published = b.published + EXCLUDED.published, updated = now()`,
			p.instance, c.EventID, strconv.FormatUint(c.OrderKey, 10), c.ID, int64(seq), c.ClockTime, len(ids))
		if err != nil {
			return fmt.Errorf("failed to record the cursor: %w", err)
		}
		return nil
	})
}

// pruneWorkers forgets workers gone for longer than memory.
func (p *pgSource) pruneWorkers(ctx context.Context, memory time.Duration) error {
	workers := pgx.Identifier{p.outbox.schema, "mercury_minion_workers"}.Sanitize()
	minionWorkers := pgx.Identifier{p.outbox.schema, "minion_workers"}.Sanitize()
	_, err := p.conn.Exec(ctx, `DELETE FROM `+workers+` AS c WHERE c.seen < now() - make_interval(secs => $1)
		AND NOT EXISTS (SELECT 1 FROM `+minionWorkers+` AS w WHERE w.id = c.id)`, memory.Seconds())
	if err != nil {
		return fmt.Errorf("failed to prune remembered workers: %w", err)
	}
	return nil
}
