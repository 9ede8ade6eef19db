package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The configuration reference in docs/ is generated from the settings
// table: a setting added, renamed or given a new default without running
// go generate fails here.
func TestReferenceIsCurrent(t *testing.T) {
	const file = "../../../../docs/configuration.md"
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run: go generate ./cmd/mercury/internal/config)", err)
	}
	if !bytes.Equal(got, Reference()) {
		t.Fatalf("%s is stale: run go generate ./cmd/mercury/internal/config", file)
	}
}

func TestReferenceNamesEverySetting(t *testing.T) {
	ref := string(Reference())
	for _, s := range settings {
		for _, want := range []string{"`" + s.key + "`", "`--" + s.Flag() + "`", "`" + s.Env() + "`"} {
			if !strings.Contains(ref, want) {
				t.Errorf("the reference lacks %s", want)
			}
		}
	}
}
