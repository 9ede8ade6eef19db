// Command mercury is the Mercury message broker and its tools, in one
// binary: serve runs the broker; the other subcommands talk to one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdio stdio) error
}

// stdio is where a command reads and writes, so tests can run commands
// in-process.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

var commands = map[string]command{
	"serve":      {"run the broker", runServe},
	"config":     {"check a config file and its schemas: config check FILE", runConfig},
	"version":    {"print the version", runVersion},
	"sub":        {"print the messages published under a topic", runSub},
	"pub":        {"publish messages to a topic", runPub},
	"bus":        {"join a bus: send lines to its peers, print theirs", runBus},
	"push":       {"queue messages for pullers", runPush},
	"pull":       {"take queued messages: print them, or run a command for each", runPull},
	"connect":    {"talk to any WebSocket URL, like wscat -c", runConnect},
	"completion": {"print the shell completion script for bash, zsh or fish", runCompletion},
	"bench":      {"measure a broker: deliveries, latency, CPU and memory", runBench},
	"bridge":     {"bridge Minion's job queue to Mercury: install, status, run", runBridge},
	"audit":      {"keep the Minion bridge's events in PostgreSQL; export them; show a job's timeline", runAudit},
	"auth":       {"make API keys and their hashes, sign test tokens: auth new-key | hash-key | token", runAuth},
}

// exitError carries a process exit code up to main, the only caller of
// os.Exit.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit codes.
const (
	exitOK      = 0
	exitRefused = 1 // the broker refused something, or the command failed
	exitUsage   = 2
	exitConnect = 3 // cannot connect to the broker
)

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	io := stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}
	os.Exit(run(context.Background(), os.Args[1:], io))
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(io.err)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(io.err, "mercury: unknown command %q\n\n", args[0])
		usage(io.err)
		return exitUsage
	}
	err := cmd.run(ctx, args[1:], io)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(io.err, "mercury %s: %v\n", args[0], err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitRefused
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

// newFlagSet returns a flag set whose usage shows the command's synopsis
// and examples.
func newFlagSet(name, synopsis string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("mercury "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mercury %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		if len(examples) > 0 {
			fmt.Fprintf(w, "\nExamples:\n  %s\n", strings.Join(examples, "\n  "))
		}
	}
	return fs
}

// parseFlags parses args, mapping flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string, io stdio) error {
	fs.SetOutput(io.err)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}
