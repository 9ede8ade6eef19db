package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 12345 123456789 2048 18446744073709551615\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.cpu != 3250*time.Millisecond {
		t.Fatalf("ppid %d cpu %v, want 17 and 3.25s", st.ppid, st.cpu)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S x 1 1 0 -1 0 0 0 0 0 a b"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func TestSampleSelf(t *testing.T) {
	s, err := sampleSelf()
	if err != nil {
		t.Fatal(err)
	}
	if s.rss <= 0 {
		t.Fatalf("rss %d", s.rss)
	}
	// This process is its own descendant set's root.
	all, err := withDescendants([]int{os.Getpid()})
	if err != nil || len(all) == 0 || all[0] != os.Getpid() {
		t.Fatalf("withDescendants = %v, %v", all, err)
	}
	if _, err := sampleProcs([]int{1 << 30}); err == nil {
		t.Fatal("a missing process was measured")
	}
}

func TestPidList(t *testing.T) {
	var l pidList
	if err := l.Set("12, 34"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("56"); err != nil {
		t.Fatal(err)
	}
	if l.String() != "12,34,56" {
		t.Fatalf("pids %s", l.String())
	}
	if err := l.Set("nginx"); err == nil {
		t.Fatal("a name was taken for a pid")
	}
}
