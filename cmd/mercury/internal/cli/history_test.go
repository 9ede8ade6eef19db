package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHistoryLastsAcrossSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "mercury", "history")
	h, err := openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"one", "", "two", "two", "  ", `{"three":3}`} {
		h.Add(l)
	}
	h.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("history file mode %o: messages may hold secrets, want 600", perm)
	}

	h, err = openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Len() != 3 || h.At(0) != `{"three":3}` || h.At(1) != "two" || h.At(2) != "one" {
		t.Fatalf("history after reopening: %d lines, %q", h.Len(), h.lines)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	var b strings.Builder
	for i := range historyMax + 500 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	h, err := openHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	h.Add("newest")
	h.Close()
	if h.Len() != historyMax || h.At(0) != "newest" || h.At(historyMax-1) != "line 501" {
		t.Fatalf("%d lines, oldest %q", h.Len(), h.At(h.Len()-1))
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != historyMax+1 {
		t.Fatalf("the file keeps %d lines, want it trimmed to %d", n, historyMax+1)
	}
}

func TestHistoryThatCannotBeWrittenStillWorks(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	h, err := openHistory(filepath.Join(blocker, "history")) // a file is in the way
	if err == nil || !strings.Contains(err.Error(), "history") {
		t.Fatalf("err = %v, want one saying the history is not kept", err)
	}
	h.Add("kept in memory")
	if h.Len() != 1 || h.At(0) != "kept in memory" {
		t.Fatal("in-memory history does not work")
	}
}

func TestHistoryPath(t *testing.T) {
	t.Setenv("MERCURY_HISTORY", "")
	t.Setenv("XDG_STATE_HOME", "/state")
	if p, _ := historyPath(); p != "/state/mercury/history" {
		t.Errorf("with XDG_STATE_HOME: %q", p)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, _ := historyPath(); p != "/home/u/.local/state/mercury/history" {
		t.Errorf("without XDG_STATE_HOME: %q", p)
	}
	t.Setenv("MERCURY_HISTORY", "/tmp/h")
	if p, _ := historyPath(); p != "/tmp/h" {
		t.Errorf("with MERCURY_HISTORY: %q", p)
	}
}
