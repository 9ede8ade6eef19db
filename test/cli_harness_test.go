package test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
)

// cliProc is a running mercury client command (sub, pub, bus …) whose
// standard input is a pipe and whose output is collected.
type cliProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // standard output, line by line
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	done   chan struct{}
}

// cliEnv is the environment of client commands: none of the developer's
// MERCURY_* settings, a history file of the test's own.
func cliEnv(t testing.TB, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MERCURY_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "MERCURY_HISTORY="+filepath.Join(t.TempDir(), "history"))
	return append(env, extra...)
}

// startCLI runs mercury with args; the process is killed when the test
// ends.
func startCLI(t testing.TB, env []string, args ...string) *cliProc {
	t.Helper()
	c := &cliProc{lines: make(chan string, 1000), stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(mercuryBin, args...)
	c.cmd.Env = env
	if env == nil {
		c.cmd.Env = cliEnv(t)
	}
	c.cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			c.stdout.Write([]byte(line))
			if strings.HasSuffix(line, "\n") {
				c.lines <- strings.TrimSuffix(line, "\n")
			}
			if err != nil {
				break
			}
		}
		close(c.lines)
		c.cmd.Wait()
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("mercury %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), c.stdout, c.stderr)
		}
	})
	return c
}

// line returns the next line of standard output.
func (c *cliProc) line(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("mercury exited (%s) instead of printing a line; stderr:\n%s", c.cmd.ProcessState, c.stderr)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("mercury printed no line within 10s; stderr:\n%s", c.stderr)
	}
	panic("unreachable")
}

// waitStderr waits until standard error contains s.
func (c *cliProc) waitStderr(t testing.TB, s string) {
	t.Helper()
	waitFor(t, "mercury to print "+s+" on stderr", func() bool { return strings.Contains(c.stderr.String(), s) })
}

// send writes lines to the command's standard input.
func (c *cliProc) send(t testing.TB, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(c.stdin, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// wait waits for the command to exit and returns its exit code.
func (c *cliProc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("mercury still running after 20s; stderr:\n%s", c.stderr)
	}
	return c.cmd.ProcessState.ExitCode()
}

// expectExit waits for the command to exit, and checks its exit code and
// that stderr says why.
func (c *cliProc) expectExit(t testing.TB, want int, says ...string) {
	t.Helper()
	code := c.wait(t)
	expectExit(t, c.stderr.String(), code, want, says...)
}

// runCLI runs mercury to its end with stdin as standard input.
func runCLI(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIEnv(t, cliEnv(t), stdin, args...)
}

func runCLIEnv(t testing.TB, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c := startCLI(t, env, args...)
	io.WriteString(c.stdin, stdin)
	c.stdin.Close()
	code = c.wait(t)
	return c.stdout.String(), c.stderr.String(), code
}

// expectExit checks a command's exit code and that stderr says why.
func expectExit(t testing.TB, stderr string, code, want int, says ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, want, stderr)
	}
	for _, s := range says {
		if !strings.Contains(stderr, s) {
			t.Fatalf("stderr does not say %q:\n%s", s, stderr)
		}
	}
}
