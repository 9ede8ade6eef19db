package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// lineSource gives the lines a command sends: typed at the prompt, or
// read from standard input.
type lineSource interface {
	// ReadLine returns the next line without its end, or io.EOF.
	ReadLine() (string, error)
}

// eachLine calls send with each non-empty line of src and its number
// (empty lines count), until the input ends, reading it fails, or send
// fails or returns more false.
func eachLine(src lineSource, send func(n int, line string) (more bool, err error)) error {
	for n := 1; ; n++ {
		line, err := src.ReadLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read standard input: %w", err)
		}
		if line == "" {
			continue
		}
		if more, err := send(n, line); err != nil || !more {
			return err
		}
	}
}

// lineReader reads lines from a pipe or a file.
type lineReader struct{ r *bufio.Reader }

func newLineReader(r io.Reader) *lineReader { return &lineReader{bufio.NewReaderSize(r, 64<<10)} }

func (l *lineReader) ReadLine() (string, error) {
	s, err := l.r.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r"), nil
}

// prompt is the interactive line editor of golang.org/x/term: a "> "
// prompt, line editing, and a history kept in a file. What is written to
// it appears above the prompt, and the line being typed is drawn again
// below, as it was.
type prompt struct {
	t       *term.Terminal
	fd      int
	out     *os.File
	saved   *term.State
	hist    *history
	winch   chan os.Signal
	done    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
}

// interactive returns the input and output files when both are a
// terminal: then a command that sends shows a prompt.
func interactive(io command.Stdio) (in, out *os.File, ok bool) {
	_, inTTY := terminalFD(io.In)
	_, outTTY := terminalFD(io.Out)
	if !inTTY || !outTTY {
		return nil, nil, false
	}
	return io.In.(*os.File), io.Out.(*os.File), true
}

// startPrompt puts the terminal in raw mode and starts the line editor.
// Ctrl-D on an empty line and Ctrl-C end the input. The history is
// opened; historyErr says why it will not be kept, if it will not.
func startPrompt(in, out *os.File) (p *prompt, historyErr error, err error) {
	fd := int(in.Fd())
	saved, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to set up the terminal: %w", err)
	}
	p = &prompt{fd: fd, out: out, saved: saved, winch: make(chan os.Signal, 1), done: make(chan struct{})}
	p.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "> ")
	path, historyErr := historyPath()
	if historyErr == nil {
		p.hist, historyErr = openHistory(path)
	} else {
		p.hist = &history{}
	}
	p.t.History = p.hist
	p.resize()
	signal.Notify(p.winch, syscall.SIGWINCH)
	p.wg.Go(func() {
		for {
			select {
			case <-p.winch:
				p.resize()
			case <-p.done:
				return
			}
		}
	})
	return p, historyErr, nil
}

// resize tells the line editor the terminal's size, so that long lines
// wrap where the terminal wraps them.
func (p *prompt) resize() {
	if w, h, err := term.GetSize(int(p.out.Fd())); err == nil {
		p.t.SetSize(w, h)
	}
}

// ReadLine returns the next line typed, or io.EOF on Ctrl-D or Ctrl-C.
func (p *prompt) ReadLine() (string, error) { return p.t.ReadLine() }

// Write shows b above the prompt.
func (p *prompt) Write(b []byte) (int, error) { return p.t.Write(b) }

// Close gives the terminal back as it was.
func (p *prompt) Close() {
	p.closing.Do(func() {
		signal.Stop(p.winch)
		close(p.done)
		p.wg.Wait()
		term.Restore(p.fd, p.saved)
		p.out.WriteString("\n") // leave the last prompt's line
		p.hist.Close()
	})
}
