package main

import (
	"testing"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// The audit log and the bridge find the broker and the token where the
// other commands do.
func TestBrokerFromEnv(t *testing.T) {
	t.Setenv("MERCURY_URL", "http://mercury:3000")
	t.Setenv("MERCURY_TOKEN", "tok")
	parse := func(args ...string) (string, command.HeaderList) {
		fs := command.NewFlagSet("x", "")
		broker := fs.String("broker", "http://127.0.0.1:3000", "")
		var header command.HeaderList
		fs.Var(&header, "header", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		brokerFromEnv(fs, broker, &header)
		return *broker, header
	}
	if b, h := parse(); b != "http://mercury:3000" || h.String() != "Authorization: Bearer tok" {
		t.Errorf("from the environment: %s, %s", b, h.String())
	}
	if b, h := parse("--broker", "http://other:3000", "--header", "authorization: Basic x"); b != "http://other:3000" || h.String() != "authorization: Basic x" {
		t.Errorf("flags win: %s, %s", b, h.String())
	}
}
