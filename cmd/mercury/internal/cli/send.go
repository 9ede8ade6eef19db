package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// confirmWindow is how many frames may wait for their answer at once: the
// sender keeps sending while the broker confirms, up to this many ahead.
const confirmWindow = 1024

// duplex runs a connection that sends lines and receives frames: pub,
// push, bus and connect, in a pipe or at the prompt.
type duplex struct {
	scr   *screen
	conn  *client.Conn
	input lineSource
	// confirms: envelope mode, where the broker answers each frame sent
	// with {"ok":SEQ} or {"error":…}, in order.
	confirms bool
	// errorFrames: without envelope mode, frames {"error":…} from Mercury
	// are refusals of what was sent, not messages.
	errorFrames bool
	// receives: messages are expected (bus, connect) and shown.
	receives bool
	// accepted, if set, is called with the sequence number of each
	// message the broker confirmed.
	accepted func(seq uint64)
	// lineNumbers: refusals name the input line (a pipe), not at a
	// prompt where the line was just typed.
	lineNumbers bool
	// count ends the session after that many messages received.
	count int
	// listen keeps receiving after the end of the input (--count or
	// --timeout says how long).
	listen bool

	mu        sync.Mutex
	pending   []int // input lines sent and not yet answered, oldest first
	inputDone bool
	drained   chan struct{} // closed once the input ended and every answer came
	window    chan struct{}
	sent      int
	refused   int
	received  int
}

func (d *duplex) init() {
	d.drained = make(chan struct{})
	d.window = make(chan struct{}, confirmWindow)
}

// errConnGone is a send that failed because the connection ended; the
// receiving side says why.
var errConnGone = errors.New("the connection ended")

// run sends and receives until the input ends and, in envelope mode,
// every frame sent was answered; or until ctx ends, the connection ends,
// or --count messages came.
func (d *duplex) run(ctx context.Context) error {
	d.init()
	recvDone := make(chan error, 1)
	go func() { recvDone <- d.receive(ctx) }()
	// The sender may stay blocked reading standard input after the
	// session ends (a read cannot be interrupted); the process exits
	// then.
	sendDone := make(chan error, 1)
	go func() { sendDone <- d.send(ctx) }()

	select {
	case err := <-recvDone:
		return d.result(ctx, err)
	case <-ctx.Done():
		d.conn.CloseNow()
		return d.result(ctx, <-recvDone)
	case err := <-sendDone:
		if err != nil && !errors.Is(err, errConnGone) {
			d.conn.CloseNow()
			<-recvDone
			return err
		}
	}
	// The input ended.
	d.endInput()
	if d.listen {
		select {
		case err := <-recvDone:
			return d.result(ctx, err)
		case <-ctx.Done():
			d.conn.CloseNow()
			return d.result(ctx, <-recvDone)
		}
	}
	select {
	case <-d.drained:
	case err := <-recvDone:
		return d.result(ctx, err)
	case <-ctx.Done():
		d.conn.CloseNow()
		return d.result(ctx, <-recvDone)
	}
	// A close handshake: in raw mode, error frames the broker sent before
	// it answered the close still arrive. However the reading ends then,
	// the session is over as it should be.
	d.conn.Close()
	<-recvDone
	return d.result(ctx, nil)
}

// result turns how the session ended into the command's result.
func (d *duplex) result(ctx context.Context, err error) error {
	d.mu.Lock()
	unanswered, refused, sent := len(d.pending), d.refused, d.sent
	d.mu.Unlock()
	switch {
	case errors.Is(err, errEnough):
		err = nil
	case err != nil && ctx.Err() == nil && client.CloseStatus(err) != 1000:
		why, brokerRefused := closedFailure(err)
		code := command.ExitConnect
		if brokerRefused {
			code = command.ExitRefused
		}
		if unanswered > 0 {
			why += fmt.Sprintf(" (%d messages sent were not confirmed)", unanswered)
		}
		return &command.ExitError{Code: code, Err: errors.New(why)}
	}
	switch {
	case unanswered > 0 && timedOut(ctx):
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("timed out: %d of %d messages sent were not confirmed", unanswered, sent)}
	case unanswered > 0 && ctx.Err() != nil:
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("interrupted: %d of %d messages sent were not confirmed", unanswered, sent)}
	case refused > 0:
		return &command.ExitError{Code: command.ExitRefused, Err: fmt.Errorf("the broker refused %d of %d messages", refused, sent)}
	}
	return nil
}

// endInput notes that nothing more will be sent.
func (d *duplex) endInput() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inputDone = true
	if len(d.pending) == 0 {
		close(d.drained)
	}
}

// send sends each line of the input as a text frame; empty lines are
// skipped.
func (d *duplex) send(ctx context.Context) error {
	return eachLine(d.input, func(n int, line string) (bool, error) {
		if d.confirms {
			select {
			case d.window <- struct{}{}:
			case <-ctx.Done():
				return false, nil
			}
			d.mu.Lock()
			d.pending = append(d.pending, n)
			d.mu.Unlock()
		}
		if err := d.conn.WriteText(ctx, line); err != nil {
			return false, errConnGone
		}
		d.mu.Lock()
		d.sent++
		d.mu.Unlock()
		return true, nil
	})
}

// receive reads frames until the connection ends: answers to what was
// sent, refusals, and messages.
func (d *duplex) receive(ctx context.Context) error {
	for {
		f, err := d.conn.Read(ctx)
		if err != nil {
			return err
		}
		var env *client.Envelope
		switch {
		case f.Binary:
		case d.confirms:
			in, err := client.ParseIncoming(f.Data)
			switch {
			case err != nil:
				d.scr.warn("%v", err)
				continue
			case in.OK != nil:
				d.answered(*in.OK, nil)
				continue
			case in.Error != nil:
				d.answered(0, in.Error)
				continue
			case in.Gap != nil:
				reportGap(d.scr, in.Gap)
				continue
			}
			env = in.Message
		case d.errorFrames:
			if api := client.ParseError(f.Data); api != nil {
				d.mu.Lock()
				d.refused++
				d.mu.Unlock()
				d.scr.warn("refused: %v", api)
				continue
			}
		}
		if !d.receives {
			d.scr.warn("unexpected frame from the broker: %.200s", f.Data)
			continue
		}
		var line []byte
		if env != nil {
			line = d.scr.fmt.envelope(env, f.Data)
		} else {
			line = d.scr.fmt.frame(f)
		}
		if err := d.scr.message(line); err != nil {
			return &handlerError{err}
		}
		d.received++
		if d.count > 0 && d.received >= d.count {
			return errEnough
		}
	}
}

// answered takes the broker's answer to the oldest frame waiting for one.
func (d *duplex) answered(seq uint64, refusal *client.APIError) {
	d.mu.Lock()
	line := 0
	if len(d.pending) > 0 {
		line = d.pending[0]
		d.pending = d.pending[1:]
		<-d.window
	}
	if refusal != nil {
		d.refused++
	}
	if d.inputDone && len(d.pending) == 0 {
		select {
		case <-d.drained:
		default:
			close(d.drained)
		}
	}
	d.mu.Unlock()
	switch {
	case refusal != nil && d.lineNumbers && line > 0:
		d.scr.warn("line %d refused: %v", line, refusal)
	case refusal != nil:
		d.scr.warn("refused: %v", refusal)
	case d.accepted != nil:
		d.accepted(seq)
	}
}
