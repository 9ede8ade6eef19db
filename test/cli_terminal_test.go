package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The mercury command line at a terminal, driven through tmux: keys are
// typed with send-keys, and what the screen shows is read with
// capture-pane.

// tmuxTerm is one tmux server with one window running one command.
type tmuxTerm struct {
	t      testing.TB
	socket string
	status string // the file where the command's exit status is written
}

func requireTmux(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err == nil {
		return
	}
	msg := "tmux is needed for the terminal tests: apt-get install -y tmux"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startTerminal runs mercury with args in an 80×24 terminal, with env
// (K=V) added to its environment.
func startTerminal(t testing.TB, env []string, args ...string) *tmuxTerm {
	t.Helper()
	requireTmux(t)
	dir, err := os.MkdirTemp("", "tmux") // short: a socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "tmux.conf")
	// The window stays after the command exits, to read the screen.
	os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\nset -g history-limit 0\n"), 0o600)
	tt := &tmuxTerm{t: t, socket: filepath.Join(dir, "s"), status: filepath.Join(dir, "status")}
	// A shell waits for mercury and writes its exit status (tmux's own
	// record of it is not reliable everywhere). It lets Ctrl-C through
	// to mercury and carries on itself.
	script := `trap : INT; "$0" "$@"; echo $? > "$MERCURY_TEST_STATUS"`
	argv := append([]string{"-S", tt.socket, "-f", conf, "new-session", "-d", "-x", "80", "-y", "24", "--",
		"env", "-u", "MERCURY_URL", "-u", "MERCURY_TOKEN", "-u", "NO_COLOR", "MERCURY_TEST_STATUS=" + tt.status}, env...)
	argv = append(argv, append([]string{"sh", "-c", script, mercuryBin}, args...)...)
	if out, err := exec.Command("tmux", argv...).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the screen at the end:\n%s", tt.screen())
		}
		exec.Command("tmux", "-S", tt.socket, "kill-server").Run()
	})
	return tt
}

func (tt *tmuxTerm) tmux(args ...string) string {
	tt.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tt.socket}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen returns what the terminal shows, trailing blank lines dropped.
func (tt *tmuxTerm) screen() string {
	return strings.TrimRight(tt.tmux("capture-pane", "-p"), "\n ")
}

// coloured returns the screen with its colours as escape sequences.
func (tt *tmuxTerm) coloured() string { return tt.tmux("capture-pane", "-p", "-e") }

// lastLine returns the screen's last line that is not blank.
func (tt *tmuxTerm) lastLine() string {
	lines := strings.Split(tt.screen(), "\n")
	return lines[len(lines)-1]
}

// waitScreen waits until cond holds for the screen.
func (tt *tmuxTerm) waitScreen(what string, cond func(screen string) bool) string {
	tt.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := tt.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("the screen never showed %s; it shows:\n%s", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLastLine waits until the last line of the screen is line.
func (tt *tmuxTerm) waitLastLine(line string) {
	tt.t.Helper()
	tt.waitScreen(strconv.Quote(line)+" as the last line", func(string) bool { return tt.lastLine() == line })
}

// typeText types text, without pressing Enter.
func (tt *tmuxTerm) typeText(text string) { tt.tmux("send-keys", "-l", text) }

// press presses keys named as tmux names them: Enter, C-d, Up …
func (tt *tmuxTerm) press(keys ...string) { tt.tmux(append([]string{"send-keys"}, keys...)...) }

// exitCode waits for the command to exit and returns its exit status.
func (tt *tmuxTerm) exitCode() int {
	tt.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(tt.status); err == nil && strings.HasSuffix(string(data), "\n") {
			code, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				tt.t.Fatalf("exit status %q", data)
			}
			return code
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("mercury still running 10s after being told to leave; the screen:\n%s", tt.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCLITerminalPromptKeepsTheLineBeingTyped(t *testing.T) {
	b := startBroker(t)
	peer := dial(t, b.WS+"/bus/room", nil)
	history := filepath.Join(t.TempDir(), "history")
	term := startTerminal(t, []string{"MERCURY_HISTORY=" + history}, "bus", "/room", "--server", b.WS)

	term.waitScreen("the connection and a prompt", func(s string) bool {
		return strings.Contains(s, "connected to "+b.WS+"/bus/room") && term.lastLine() == ">"
	})
	term.typeText("half typed")
	term.waitLastLine("> half typed")

	// A message arrives while the line is half typed: it shows above the
	// prompt, indented, and the line being typed stays as it was.
	if err := peer.WriteText(context.Background(), `{"cmd":"reboot","args":[42]}`); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"cmd\": \"reboot\",\n  \"args\": [\n    42\n  ]\n}\n> half typed"
	term.waitScreen("the message above the prompt", func(s string) bool { return strings.HasSuffix(s, want) })
	if s := term.screen(); strings.Count(s, "> half typed") != 1 {
		t.Fatalf("the half-typed line shows more than once:\n%s", s)
	}
	// In colour: a terminal without NO_COLOR.
	for _, line := range strings.Split(term.coloured(), "\n") {
		if strings.Contains(line, "reboot") && !strings.Contains(line, "\x1b[") {
			t.Fatalf("JSON not coloured: %q", line)
		}
	}

	// The line is finished and sent intact.
	term.typeText(" then finished")
	term.press("Enter")
	if got := readText(t, peer); got != "half typed then finished" {
		t.Fatalf("peer got %q", got)
	}
	term.waitLastLine(">")

	// Ctrl-D leaves, exit 0, and the line is in the history file.
	term.press("C-d")
	if code := term.exitCode(); code != 0 {
		t.Fatalf("exit code %d after Ctrl-D", code)
	}
	data, err := os.ReadFile(history)
	if err != nil || string(data) != "half typed then finished\n" {
		t.Fatalf("history file: %q %v", data, err)
	}

	// The next session recalls it with Up; NO_COLOR leaves colours out;
	// Ctrl-C leaves too.
	term2 := startTerminal(t, []string{"MERCURY_HISTORY=" + history, "NO_COLOR=1"}, "bus", "/room", "--server", b.WS)
	term2.waitLastLine(">")
	term2.press("Up")
	term2.waitLastLine("> half typed then finished")
	peer.WriteText(context.Background(), `{"plain":true}`)
	term2.waitScreen("the message", func(s string) bool { return strings.Contains(s, `"plain": true`) })
	for _, line := range strings.Split(term2.coloured(), "\n") {
		if strings.Contains(line, "plain") && strings.Contains(line, "\x1b[") {
			t.Fatalf("colours despite NO_COLOR: %q", line)
		}
	}
	term2.press("C-c")
	if code := term2.exitCode(); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C", code)
	}
}

func TestCLITerminalPub(t *testing.T) {
	b := startBroker(t)
	sub := dial(t, b.WS+"/sub/livesys", nil)
	term := startTerminal(t, nil, "pub", "/livesys/42", "--server", b.WS)
	term.waitLastLine(">")
	term.typeText(`{"cmd":"reboot"}`)
	term.press("Enter")
	if got := readText(t, sub); got != `{"cmd":"reboot"}` {
		t.Fatalf("subscriber got %q", got)
	}
	term.press("C-d")
	if code := term.exitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestCLITerminalSub(t *testing.T) {
	b := startBroker(t)
	term := startTerminal(t, nil, "sub", "/livesys", "--server", b.WS)
	term.waitScreen("the connection", func(s string) bool { return strings.Contains(s, "connected") })
	post(t, b.HTTP+"/pub/livesys/42", `{"cmd":"reboot"}`)
	term.waitScreen("the message, indented", func(s string) bool {
		return strings.HasSuffix(s, "{\n  \"cmd\": \"reboot\"\n}")
	})
	term.press("C-c")
	if code := term.exitCode(); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C", code)
	}
}
