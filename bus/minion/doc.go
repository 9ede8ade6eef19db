// Package minion is the bridge from Minion, the Perl job queue on
// PostgreSQL, to Mercury: every change to every Minion job becomes one
// self-contained audit event on a Mercury topic, and an audit log keeps
// those events.
//
// The pieces, in the order an event travels:
//
//   - Install puts an outbox table and capture triggers next to Minion's
//     tables. The triggers record each insert, update, delete and truncate
//     of minion_jobs (and minion_schedules, where it exists) in the same
//     transaction as the change, then NOTIFY with the outbox row's id.
//   - Outbox reads those rows in an order that never skips a row whose
//     transaction commits late (see outbox.go).
//   - BuildEvent turns a row into an Event: the derived type (enqueued,
//     started, finished, failed, retried …), the job before and after, the
//     changed fields and the database context. Topic names its topic.
//   - Bridge runs the loop: read, build, publish through a Publisher, and
//     delete the rows only once the broker confirmed them. HTTPPublisher is
//     the Publisher that talks to a real Mercury.
//   - Auditor subscribes to the events with replay and keeps each one once
//     in an append-only table, AuditLog; AuditLog also exports them, and
//     WriteTimeline prints a job's history.
//
// Minion on SQLite (Minion::Backend::SQLite) has the same pieces in the
// sqlite*.go files: InstallSQLite, NewSQLite (a bridge that polls PRAGMA
// data_version instead of listening, and holds a lease instead of an
// advisory lock), NewSQLiteAuditor and SQLiteAuditLog, over OpenSQLite and
// the pure-Go driver modernc.org/sqlite.
//
// The command line is `mercury bridge minion` and `mercury audit`; the README
// section "Minion audit bridge" documents the events and the topic scheme,
// and event.schema.json (EventSchema) is the JSON Schema of an event. The
// tests run against a real PostgreSQL and the real Minion; miniontest gives
// them their databases and drives Minion.
package minion
