// Command soak runs the long soak of the end-to-end tests (TestSoakLong in
// test/, built with the soak tag): every kind of client the CI soak uses,
// none of them pinging, held on brokers with their default timers through
// stretches of traffic and silence for a chosen duration. It prints, per
// kind of client, the messages delivered over those expected, and the
// brokers' resident memory at the start and the end.
//
// From anywhere in the repository:
//
//	go run ./test/soak [-duration 10m] [-subscribers 3] [-rate 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long the soak runs, about")
	subscribers := flag.Int("subscribers", 3, "clients (subscribers, pullers) of each kind")
	rate := flag.Int("rate", 1, "messages per second on each route")
	traffic := flag.Duration("traffic", 2*time.Minute, "each stretch of steady traffic")
	silence := flag.Duration("silence", 70*time.Second, "the silence after each stretch")
	race := flag.Bool("race", false, "build the broker and the test with the race detector")
	flag.Parse()

	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: failed to find the module's root:", err)
		os.Exit(1)
	}
	args := []string{"test", "-tags", "soak", "-count=1", "-timeout", "0", "-run", "^TestSoakLong$", "-v"}
	if *race {
		args = append(args, "-race")
	}
	args = append(args, "./test/", "-args",
		"-soak.duration="+duration.String(), fmt.Sprint("-soak.subscribers=", *subscribers),
		fmt.Sprint("-soak.rate=", *rate), "-soak.traffic="+traffic.String(), "-soak.silence="+silence.String())
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Clean(strings.TrimSpace(string(root)))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		os.Exit(1)
	}
}
