package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// execStopGrace is how long a command interrupted by Ctrl-C or --timeout
// has, after SIGTERM, before it is killed.
const execStopGrace = 10 * time.Second

// runExec runs command with sh, the message's bytes on its standard
// input, and its topic, sequence number, time, delivery id and attempt in
// the environment (MERCURY_TOPIC …). Its output is the command's own. A
// nil error means it exited 0; an *exec.ExitError that it failed; any
// other error that it could not be run.
func runExec(ctx context.Context, command string, std command.Stdio, payload []byte, binary bool, env *client.Envelope, topic string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout = std.Out
	tail := &tailBuffer{max: 300}
	cmd.Stderr = io.MultiWriter(std.Err, tail)
	cmd.Env = append(os.Environ(), "MERCURY_TOPIC="+topic)
	if binary {
		cmd.Env = append(cmd.Env, "MERCURY_BINARY=1")
	}
	if env != nil {
		cmd.Env = append(cmd.Env,
			"MERCURY_TOPIC="+env.Topic,
			"MERCURY_SEQ="+strconv.FormatUint(env.Seq, 10),
			"MERCURY_TIME="+env.Time.Format(time.RFC3339Nano))
		if len(env.ID) > 0 {
			cmd.Env = append(cmd.Env, "MERCURY_ID="+unquoteID(env.ID), "MERCURY_ATTEMPT="+strconv.Itoa(env.Attempt))
		}
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = execStopGrace
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		reason := ee.String()
		if last := tail.lastLine(); last != "" {
			reason += ": " + last
		}
		return &execFailed{reason: reason, err: err}
	}
	if err != nil {
		return fmt.Errorf("failed to run --exec %q: %w", command, err)
	}
	return nil
}

// execFailed is a command that ran and failed.
type execFailed struct {
	reason string // "exit status 3: the last line it wrote on stderr"
	err    error
}

func (e *execFailed) Error() string { return e.reason }
func (e *execFailed) Unwrap() error { return e.err }

// unquoteID gives a delivery id for the environment: a JSON string
// without its quotes, a number as it is.
func unquoteID(id []byte) string {
	var s string
	if json.Unmarshal(id, &s) == nil {
		return s
	}
	return string(id)
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// lastLine returns the last line that is not blank.
func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
