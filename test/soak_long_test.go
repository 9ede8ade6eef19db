//go:build soak

package test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The long soak, outside CI: the mix of TestSoak for minutes, with more
// clients of each kind and a higher rate if asked, and the brokers' memory
// at the start and the end. Run it with "go run ./test/soak" (see there).

var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the long soak runs, about")
	soakClients  = flag.Int("soak.subscribers", 3, "clients (subscribers, pullers) of each kind")
	soakRate     = flag.Int("soak.rate", 1, "messages per second on each route")
	soakTraffic  = flag.Duration("soak.traffic", 2*time.Minute, "each stretch of steady traffic")
	soakSilence  = flag.Duration("soak.silence", 70*time.Second, "the silence after each stretch")
)

func TestSoakLong(t *testing.T) {
	plan := soakPlan{Traffic: *soakTraffic, Silence: *soakSilence, Rate: *soakRate, Copies: *soakClients}
	plan.Cycles = max(1, int(*soakDuration/(plan.Traffic+plan.Silence)))
	t.Logf("%d cycles of %s of traffic at %d/s and %s of silence, %d clients of each kind: %d messages each",
		plan.Cycles, plan.Traffic, plan.Rate, plan.Silence, plan.Copies, plan.messages())
	run := startSoak(t, plan)
	start := run.rss()
	began := time.Now()
	lastLog := began
	run.publishAll(func(sent int) {
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			t.Logf("%s: %d sent; broker RSS %s", time.Since(began).Round(time.Second), sent, run.rss())
		}
	})
	run.waitDelivered()
	end := run.rss()
	t.Logf("after %s:\n%s\nbroker RSS at the start: %s\nbroker RSS at the end:   %s",
		time.Since(began).Round(time.Second), run.table(), start, end)
	run.check()
}

// rss reads each broker's resident memory (VmRSS in /proc/PID/status).
func (r *soakRun) rss() string {
	var parts []string
	for _, b := range r.brokers {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.proc.cmd.Process.Pid))
		v := "?"
		if err == nil {
			for line := range strings.Lines(string(status)) {
				if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					v = strings.Join(strings.Fields(rest), " ")
				}
			}
		}
		parts = append(parts, b.name+" "+v)
	}
	return strings.Join(parts, ", ")
}
