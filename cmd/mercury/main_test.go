package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runIn runs a command line in-process and returns its exit code and
// what it printed.
func runIn(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errw bytes.Buffer
	code = run(context.Background(), args, command.Stdio{In: strings.NewReader(""), Out: &out, Err: &errw})
	return code, out.String(), errw.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"sub"},
		{"sub", "/a", "/b"},
		{"sub", "/a", "--count", "-1"},
		{"sub", "/a", "--no-such-flag"},
		{"sub", "/a", "--since", "seventeen"},
		{"sub", "/a", "--raw", "--json"},
		{"pub"},
		{"pub", "ws://127.0.0.1:1/sub/a", "message"},
		{"pub", "ws://127.0.0.1:1", "message"},
		{"bus", "/room", "--header", "no colon"},
		{"pull", "/jobs", "--nack-on-error"},
		{"pull", "/jobs", "--nack-delay", "1s"},
		{"connect", "/not/a/url"},
		{"connect"},
		{"completion"},
		{"completion", "tcsh"},
		{"sub", "/a", "--ca", "/nonexistent/ca.pem"},
	} {
		code, _, stderr := runIn(t, args...)
		if code != command.ExitUsage {
			t.Errorf("mercury %s: exit %d, want %d; stderr:\n%s", strings.Join(args, " "), code, command.ExitUsage, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if !strings.HasPrefix(lines[len(lines)-1], "mercury "+args[0]+": ") {
			t.Errorf("mercury %s: stderr %q does not say what went wrong", strings.Join(args, " "), stderr)
		}
	}
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for name := range commands {
		if name == "version" {
			continue
		}
		code, _, stderr := runIn(t, name, "--help")
		if code != command.ExitOK {
			t.Errorf("mercury %s --help: exit %d", name, code)
		}
		if !strings.Contains(stderr, "Usage: mercury "+name) || !strings.Contains(stderr, "Examples:\n  ") {
			t.Errorf("mercury %s --help lacks a synopsis or examples:\n%s", name, stderr)
		}
	}
}
