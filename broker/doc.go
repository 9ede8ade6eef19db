// Package broker is Mercury's engine, free of HTTP: topics and their
// validation, the topic trie, and the three messaging patterns, each its
// own namespace.
//
//   - Publish/subscribe: a subscriber of /a receives what is published to
//     /a and to every topic below it (/a/b, /a/b/c), by whole segments.
//   - Bus: a frame sent on a bus topic reaches every other peer on exactly
//     that topic; a peer that joined with echo also gets its own frames.
//   - Push/pull: each pushed message goes to exactly one puller, round-robin
//     in join order, and waits in a bounded queue while no puller can take
//     it.
//
// Every accepted message gets a sequence number, monotonic across the whole
// broker and all three patterns, and a time. Receivers must not block: the
// web layer gives each connection a bounded outgoing queue and closes a
// consumer that cannot keep up.
//
// Several brokers act as one through a Backplane (bus/nats implements it on
// NATS JetStream; this package never imports it): every message is stored
// there first and comes back to each broker in one sequence order, so
// sequence numbers are cluster-wide, replay reads the backplane, and push/
// pull queues are shared (QueueBackplane). Without a backplane nothing of
// this runs: a single broker needs nothing but itself.
package broker
