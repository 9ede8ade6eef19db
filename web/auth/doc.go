// Package auth decides who may do what on a Mercury broker: it verifies
// credentials (JWTs signed with HS256, RS256, ES256 or EdDSA keys, and
// static API keys stored as hashes) and turns them into Rights, the topic
// prefixes a client may use for each action.
//
// It serves no HTTP: package web finds the credential in a request, asks an
// Authenticator for a Grant, and checks Grant.Rights.Allows(action, topic)
// before every subscription and every message.
//
// A right on a prefix covers the prefix and every topic below it, by whole
// segments: a right to sub on /livesys/42 allows /livesys/42 and
// /livesys/42/cmd, not /livesys (above it) nor /livesys/420. Rights in a
// token's "mercury" claim may hold placeholders, such as /livesys/{sub},
// filled from the token's own claims; a token whose placeholder claim is
// missing or not a single safe topic segment is refused whole.
package auth
