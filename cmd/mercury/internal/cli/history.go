package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// historyMax is how many lines the history keeps.
const historyMax = 1000

// history is the prompt's line history (term.History), kept in a file so
// that it lasts from one session to the next, as a shell's does. It is
// used by the prompt's reading goroutine only.
type history struct {
	lines []string // oldest first
	file  *os.File // appended to; nil when the file cannot be written
}

// historyPath returns where the history is kept: $MERCURY_HISTORY, else
// $XDG_STATE_HOME/mercury/history, else ~/.local/state/mercury/history.
func historyPath() (string, error) {
	if p := os.Getenv("MERCURY_HISTORY"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("failed to find the history file: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "mercury", "history"), nil
}

// openHistory loads the history at path and opens it for appending. It
// fails only to say why the history will not be kept; the returned
// history works in memory all the same.
func openHistory(path string) (*history, error) {
	h := &history{}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return h, fmt.Errorf("failed to read the history: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line != "" {
			h.lines = append(h.lines, line)
		}
	}
	trimmed := len(h.lines) > historyMax
	if trimmed {
		h.lines = h.lines[len(h.lines)-historyMax:]
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return h, fmt.Errorf("failed to keep the history: %w", err)
	}
	if trimmed {
		// Rewrite the file with the lines kept, so it does not grow
		// forever.
		if err := os.WriteFile(path, []byte(strings.Join(h.lines, "\n")+"\n"), 0o600); err != nil {
			return h, fmt.Errorf("failed to keep the history: %w", err)
		}
	}
	// Messages typed may hold secrets: only the user may read the file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return h, fmt.Errorf("failed to keep the history: %w", err)
	}
	h.file = f
	return h, nil
}

// Add records a line typed; empty lines and a repeat of the last line
// are not kept.
func (h *history) Add(line string) {
	if strings.TrimSpace(line) == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == line) {
		return
	}
	h.lines = append(h.lines, line)
	if len(h.lines) > historyMax {
		h.lines = h.lines[len(h.lines)-historyMax:]
	}
	if h.file != nil {
		if _, err := h.file.WriteString(line + "\n"); err != nil {
			h.file.Close()
			h.file = nil // keep going in memory
		}
	}
}

// Len returns the number of lines kept.
func (h *history) Len() int { return len(h.lines) }

// At returns a line: 0 is the most recent.
func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

// Close closes the history file.
func (h *history) Close() error {
	if h.file == nil {
		return nil
	}
	return h.file.Close()
}
