package config

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/broker"
)

// FuzzParse feeds arbitrary files to the parser: it must never panic, it
// must refuse with a *Error naming the file, and what it accepts must be
// well formed. go test runs the seeds; go test -fuzz FuzzParse explores.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, seed := range []string{
		"", "listen: :3000\n", "buses:\n  /a:\n    schemma: x\n", "buses: {/a: {history: {messages: 1, age: 1h}, queue: {ttl: 1s}}}\n",
		"allow_origin: [a, b]\n", "a: &x {b: *x}\n", "buses:\n  /a: &p\n    durable: true\n  /b: *p\n", "- 1\n", "listen: [\n",
		"max_message_size: 1MiB\nbuses:\n  /a//b: {}\n", "\xff: 1\n", "buses:\n  ? [a]\n  : 1\n", "<<: {listen: x}\n",
		"auth:\n  jwt: {secret_file: s, keys: [a.pem, b.pem], issuer: i, audience: a, leeway: 30s}\n",
		"auth:\n  api_keys:\n    - {name: w, hash: \"sha256:00\", rights: {pub: [/jobs], admin: true}}\n    - {name: w, hash: x}\n",
		"auth:\n  anonymous: {sub: [/public], admin: true, pull: /x/{sub}}\n", "auth: {api_keys: [{name: a, hash: b, rights: {subscribe: [/x]}}]}\n",
		"allow_anonymous: yes\ncompression: true\nidle_timeout: 5m\npublish_rate: 10\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fv, err := parse("fuzz.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Where, "fuzz.yaml") {
				t.Fatalf("error %v is not a *Error naming the file", err)
			}
			return
		}
		seen := map[broker.Topic]bool{}
		for _, b := range fv.buses {
			if _, err := broker.ParseTopic(string(b.Bus)); err != nil || seen[b.Bus] || b.Line <= 0 {
				t.Fatalf("accepted bus %+v (duplicate: %v, %v)", b, seen[b.Bus], err)
			}
			seen[b.Bus] = true
		}
		names := map[string]bool{}
		for _, k := range fv.apiKeys {
			if k.Name == "" || k.Hash == "" || names[k.Name] || k.Line <= 0 || k.Rights.HasPlaceholders() {
				t.Fatalf("accepted API key %+v", k)
			}
			names[k.Name] = true
		}
		for key, v := range fv.values {
			if _, ok := find(key); !ok || v.line <= 0 {
				t.Fatalf("accepted unknown setting %q line %d", key, v.line)
			}
		}
	})
}
