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
package broker
