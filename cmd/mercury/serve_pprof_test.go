package main

import "testing"

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"--minion-pg=postgres://u:pw@db/app": "--minion-pg=postgres://u:xxxxx@db/app",
		"postgres://u:pw@db/app":             "postgres://u:xxxxx@db/app",
		"nats://a:b@n1:4222":                 "nats://a:xxxxx@n1:4222",
		"postgres://u@db/app":                "postgres://u@db/app",
		"--listen=127.0.0.1:3000":            "--listen=127.0.0.1:3000",
		"serve":                              "serve",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
