package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/web/auth"
)

// new-secret writes a secret the broker accepts, never over an existing
// file; token refuses a secret the broker would refuse.
func TestAuthNewSecretAndToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hs256.secret")
	if code, _, stderr := runIn(t, "auth", "new-secret", file); code != 0 {
		t.Fatalf("new-secret: exit %d: %s", code, stderr)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := auth.LoadSecretFile(file); err != nil {
		t.Fatalf("the broker refuses the new secret: %v", err)
	}
	before, _ := os.ReadFile(file)
	if code, _, stderr := runIn(t, "auth", "new-secret", file); code == 0 || !strings.Contains(stderr, "exists") {
		t.Fatalf("new-secret over an existing file: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("the existing secret was overwritten")
	}
	if code, stdout, stderr := runIn(t, "auth", "token", "--secret-file", file, "--sub", "42"); code != 0 || strings.Count(stdout, ".") != 2 {
		t.Fatalf("token: exit %d: %q %s", code, stdout, stderr)
	}

	short := filepath.Join(dir, "short.secret")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	code, stdout, stderr := runIn(t, "auth", "token", "--secret-file", short)
	if code != 2 || stdout != "" || !strings.Contains(stderr, "at least 32 bytes") {
		t.Fatalf("token with a short secret: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
}
