// Package nats joins several Mercury brokers into one on NATS JetStream:
// it implements broker.Backplane (pub/sub and bus through one stream, so
// sequence numbers are cluster-wide; replay from the stream) and
// broker.QueueBackplane (push/pull on a work-queue stream with one durable
// pull consumer per queue, dead letters in a stream of their own, pullers
// and queue lifetimes in key-value buckets). Nothing here is home-made
// consensus: JetStream orders, stores and replicates; the brokers only
// read and write it.
//
// What lives on NATS, for a cluster named "mercury" (Options.Name):
//
//	stream MERCURY          mercury.m.<topic>  published messages (history, replay)
//	                        mercury.b.<topic>  bus messages
//	stream MERCURY_QUEUES   mercury.q.<topic>  pushed messages (work-queue retention)
//	stream MERCURY_DEAD     mercury.d.<topic>  dead letters
//	KV MERCURY_QUEUE_INFO   one key per queue: its topic, TTL and last use
//	KV MERCURY_PULLERS      one key per queue and broker with pullers (a lease)
//	KV MERCURY_UNCOUNTED    per queued message handed over without an attempt: how often
//	subject mercury.ctl.evict.<queue>  takeovers: the other brokers evict their pullers
//
// Connect connects and creates what is missing; Backplane.Close lets go.
// The tests run against an embedded three-node JetStream cluster
// (natstest_test.go) started by the test itself.
package nats
