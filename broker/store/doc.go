// Package store is Mercury's embedded durable store: a small ordered
// key-value layer (KV) that the broker's durability logic builds on, and a
// Committer that turns many concurrent "make this durable" requests into
// shared fsyncs (group commit).
//
// Two engines implement KV: OpenPebble (github.com/cockroachdb/pebble/v2,
// an LSM tree with a write-ahead log) and OpenBolt (go.etcd.io/bbolt, a
// copy-on-write B+tree in one file). Both pass the same conformance suite,
// including a crash test that kills a writer with SIGKILL and checks that
// every acknowledged batch survived. Open opens the engine chosen by
// measuring both on Mercury's workload; README.md ("Choosing the durable
// store") has the figures and the command that reproduces them.
//
// The broker package never imports this one: cmd/mercury opens the store
// and hands it to the broker.
//
// See Example for opening a store, committing durably and scanning.
package store
