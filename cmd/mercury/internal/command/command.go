// Package command is what every mercury subcommand shares: where it reads
// and writes, its flag set and usage, and how an error becomes an exit
// code. Only main calls os.Exit.
package command

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Stdio is where a command reads and writes, so tests can run commands
// in-process.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// ExitError carries a process exit code up to main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes.
const (
	ExitOK      = 0
	ExitRefused = 1 // the broker refused something, or the command failed
	ExitUsage   = 2
	ExitConnect = 3 // cannot connect to the broker
)

// UsageError is a mistake on the command line: exit code 2.
func UsageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// NewFlagSet returns a flag set whose usage shows the command's synopsis
// and examples.
func NewFlagSet(name, synopsis string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("mercury "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mercury %s %s\n", name, synopsis)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
		if len(examples) > 0 {
			fmt.Fprintf(w, "\nExamples:\n  %s\n", strings.Join(examples, "\n  "))
		}
	}
	return fs
}

// ParseFlags parses args, mapping flag errors to usage errors.
func ParseFlags(fs *flag.FlagSet, args []string, io Stdio) error {
	fs.SetOutput(io.Err)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &ExitError{Code: ExitUsage, Err: err}
	}
	return nil
}

// Given reports whether the flag name was given on the command line.
func Given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// Code is the exit code for what a command returned.
func Code(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitRefused
}
