// Command mercury is the Mercury message broker and its tools, in one
// binary: serve runs the broker; the other subcommands talk to one.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/bench"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/cli"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// subcommand is one of mercury's commands.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, io command.Stdio) error
}

var commands = map[string]subcommand{
	"serve":      {"run the broker", runServe},
	"config":     {"check a config file and its schemas: config check FILE", runConfig},
	"version":    {"print the version", runVersion},
	"sub":        {"print the messages published under a topic", cli.RunSub},
	"pub":        {"publish messages to a topic", cli.RunPub},
	"bus":        {"join a bus: send lines to its peers, print theirs", cli.RunBus},
	"push":       {"queue messages for pullers", cli.RunPush},
	"pull":       {"take queued messages: print them, or run a command for each", cli.RunPull},
	"connect":    {"talk to any WebSocket URL, like wscat -c", cli.RunConnect},
	"req":        {"send a request to the agents under a topic and print their answers", cli.RunReq},
	"who":        {"list who is subscribed under a topic; --watch for joins and leaves", cli.RunWho},
	"completion": {"print the shell completion script for bash, zsh or fish", runCompletion},
	"bench":      {"measure a broker: deliveries, latency, CPU and memory", bench.Run},
	"bridge":     {"bridge Minion's job queue to Mercury: install, status, run", runBridge},
	"audit":      {"keep the Minion bridge's events in PostgreSQL or SQLite; export them; show a job's timeline", runAudit},
	"auth":       {"make API keys and their hashes, sign test tokens: auth new-key | hash-key | token", runAuth},
}

func main() {
	io := command.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	os.Exit(run(context.Background(), os.Args[1:], io))
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, io command.Stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(io.Err)
		if len(args) == 0 {
			return command.ExitUsage
		}
		return command.ExitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(io.Err, "mercury: unknown command %q\n\n", args[0])
		usage(io.Err)
		return command.ExitUsage
	}
	err := cmd.run(ctx, args[1:], io)
	code := command.Code(err)
	if code != command.ExitOK {
		fmt.Fprintf(io.Err, "mercury %s: %v\n", args[0], err)
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mercury <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'mercury <command> --help' for a command's flags and examples.")
}
