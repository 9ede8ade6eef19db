package cli

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// screen is where a command shows what happens: messages on standard
// output, nothing else there; notes and errors on standard error. With an
// interactive prompt, both go above the prompt, leaving the line being
// typed intact. Its methods are safe for concurrent use.
type screen struct {
	name  string // "mercury sub", before every note
	quiet bool   // no notes, only errors

	mu        sync.Mutex
	out       io.Writer
	diag      io.Writer
	fmt       format
	diagColor bool
}

// newScreen returns the screen of a command run with io; messages are
// pretty-printed and coloured when standard output is a terminal.
func newScreen(name string, io command.Stdio, quiet bool) *screen {
	s := &screen{name: "mercury " + name, quiet: quiet, out: io.Out, diag: io.Err}
	_, s.fmt.pretty = terminalFD(io.Out)
	s.fmt.color = s.fmt.pretty && colorAllowed()
	_, errTTY := terminalFD(io.Err)
	s.diagColor = errTTY && colorAllowed()
	return s
}

// colorAllowed reports whether the environment allows colours
// (https://no-color.org).
func colorAllowed() bool {
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// terminalFD returns the file descriptor of x when it is a terminal.
func terminalFD(x any) (int, bool) {
	f, ok := x.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// usePrompt sends everything shown above the prompt p.
func (s *screen) usePrompt(p *prompt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out, s.diag = p, p
	s.diagColor = s.fmt.color
}

// message shows one message, formatted, on a line of its own.
func (s *screen) message(b []byte) error {
	line := make([]byte, 0, len(b)+1)
	line = append(append(line, b...), '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.out.Write(line)
	return err
}

// note tells what the command is doing (connected, reconnecting …),
// unless quiet.
func (s *screen) note(format string, args ...any) {
	if !s.quiet {
		s.diagnostic(ansiDim, format, args...)
	}
}

// warn tells something that went wrong: a message the broker refused, a
// gap in a replay.
func (s *screen) warn(format string, args ...any) {
	s.diagnostic(ansiRed, format, args...)
}

func (s *screen) diagnostic(color, format string, args ...any) {
	msg := s.name + ": " + fmt.Sprintf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.diagColor {
		msg = color + msg + ansiReset
	}
	io.WriteString(s.diag, msg+"\n")
}
