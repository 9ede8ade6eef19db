//go:build unix

package fdlimit

import (
	"syscall"
	"testing"
)

func TestRaiseSetsTheSoftLimitToTheHardLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	orig := rl
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	if rl.Max > 64 {
		// Start from a lowered soft limit, as a shell's `ulimit -Sn` leaves it.
		rl.Cur = 64
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if l.Soft != orig.Max || l.Hard != orig.Max {
		t.Fatalf("Raise = %+v, want soft and hard %d", l, orig.Max)
	}
	if orig.Max > 64 && l.Before != 64 {
		t.Fatalf("Before = %d, want 64", l.Before)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur != orig.Max {
		t.Fatalf("soft limit after Raise = %d (%v), want %d", rl.Cur, err, orig.Max)
	}
}

func TestConnectionsLeavesTheReserve(t *testing.T) {
	for _, c := range []struct {
		soft     uint64
		reserved int
		want     int
	}{
		{20000, 128, 19872},
		{100, 128, 0},
		{128, 128, 0},
		{^uint64(0), 128, maxInt},
	} {
		if got := (Limit{Soft: c.soft}).Connections(c.reserved); got != c.want {
			t.Errorf("Limit{Soft: %d}.Connections(%d) = %d, want %d", c.soft, c.reserved, got, c.want)
		}
	}
}
