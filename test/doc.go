// Package test holds Mercury's end-to-end tests: the real mercury binary,
// started on free loopback ports, driven by the Go client (web/client) and
// by third-party clients (Node's ws package and wscat, in test/node).
package test
