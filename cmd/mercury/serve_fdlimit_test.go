package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/fdlimit"
)

func TestConnectionCapacityIsLoggedOnceWithTheReserve(t *testing.T) {
	for _, c := range []struct {
		name      string
		withStore bool
		maxConns  int
		want      []string
		warn      bool
	}{
		{"no store", false, 10000, []string{"connections=19936", "reserved=64", "open_files=20000"}, false},
		{"store", true, 10000, []string{"connections=18936", "reserved=1064"}, false},
		{"max_connections above", false, 20000, []string{"connections=19936"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			logConnectionCapacity(logger, fdlimit.Limit{Soft: 20000, Hard: 20000}, c.withStore, c.maxConns)
			out := buf.String()
			if n := strings.Count(out, `msg="connection capacity"`); n != 1 {
				t.Fatalf("capacity logged %d times, want once:\n%s", n, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %q:\n%s", w, out)
				}
			}
			if warned := strings.Contains(out, "level=WARN"); warned != c.warn {
				t.Errorf("warned = %v, want %v:\n%s", warned, c.warn, out)
			}
		})
	}
}
