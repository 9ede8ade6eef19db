package cli

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

func RunPull(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("pull", "TOPIC|URL [flags]",
		"mercury pull /jobs                                # print jobs as they come; each goes to one puller only",
		"mercury pull /jobs --ack --count 1                # take one job, print it, then acknowledge it",
		"mercury pull /jobs --exec ./handle-job.sh --nack-on-error   # a tiny worker: ack on exit 0, nack otherwise",
		"mercury pull /jobs --ack --json | jq -c .data     # one JSON object per job, with id and attempt",
	)
	conn := addConnFlags(fs, true)
	session := addSessionFlags(fs, "messages")
	out := addOutputFlags(fs)
	ack := fs.Bool("ack", false, "acknowledge each message once printed (or once --exec finished), so that an unprinted one is delivered again (implies --envelope)")
	execCommand := fs.String("exec", "", "run `COMMAND` with sh for each message, the message on its standard input, MERCURY_TOPIC, MERCURY_SEQ, MERCURY_ID and MERCURY_ATTEMPT in its environment; the message is not printed")
	nackOnError := fs.Bool("nack-on-error", false, "with --exec: acknowledge when the command exits 0, give the message back (nack) when it fails (implies --ack)")
	nackDelay := fs.Duration("nack-delay", 0, "with --nack-on-error: deliver a failed message again after `DURATION` at the soonest")
	prefetch := fs.Int("prefetch", 0, "most messages held at once (default: 1 with --exec, N with --count N in envelope mode, else the broker's)")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return command.UsageError("want one topic or URL, got %d arguments (see mercury pull --help)", len(pos))
	}
	if err := firstError(session.check(), out.check()); err != nil {
		return err
	}
	switch {
	case *nackOnError && *execCommand == "":
		return command.UsageError("--nack-on-error needs --exec: it acks or nacks by the command's exit code")
	case *nackDelay != 0 && !*nackOnError:
		return command.UsageError("--nack-delay needs --nack-on-error")
	case *prefetch < 0:
		return command.UsageError("--prefetch %d: want 1 or more", *prefetch)
	}
	acking := *ack || *nackOnError
	opts, err := conn.options()
	if err != nil {
		return err
	}
	opts.Envelope = out.wantsEnvelope() || acking
	q := url.Values{}
	switch {
	case *prefetch > 0:
		q.Set("prefetch", strconv.Itoa(*prefetch))
	case *execCommand != "":
		q.Set("prefetch", "1") // one job at a time: the others stay for other workers
	case opts.Envelope && session.count > 0:
		// Hold no more than will be taken: what is held and not acked when
		// we leave is delivered again, and each delivery counts towards the
		// bus's max_attempts.
		q.Set("prefetch", strconv.Itoa(min(session.count, 16)))
	}
	u, err := conn.target("pull", pos[0], q)
	if err != nil {
		return err
	}
	topic := "/" + strings.Trim(pos[0], "/")
	if isURL(pos[0]) {
		pu, _ := url.Parse(u) // target made it
		topic = strings.TrimPrefix(pu.Path, "/pull")
	}
	scr := newScreen("pull", io, conn.quiet)
	out.apply(scr)
	ctx, cancel := session.context(ctx)
	defer cancel()

	if acking {
		if server, topic, q, ok := sdkTarget(u, "prefetch", "ttl", "must_exist", "exclusive", "takeover"); ok {
			w := &worker{scr: scr, io: io, exec: *execCommand, nackOnError: *nackOnError, count: session.count}
			err := w.run(ctx, sdkClient(server, opts, scr), u, topic, q, *nackDelay)
			return session.outcome(ctx, w.received, err)
		}
	}

	received := 0
	r := &receiver{scr: scr, opts: opts, url: func() (string, error) { return u, nil }}
	r.handle = func(ctx context.Context, c *client.Conn, f client.Frame) error {
		var env *client.Envelope
		if opts.Envelope {
			in, err := client.ParseIncoming(f.Data)
			switch {
			case err != nil:
				scr.warn("%v", err)
				return nil
			case in.Error != nil:
				scr.warn("the broker says: %v", in.Error)
				return nil
			case in.Message == nil:
				return nil
			}
			env = in.Message
		}
		var done error // nil: handled; otherwise why not
		if *execCommand != "" {
			payload, binary := f.Data, f.Binary
			if env != nil {
				if payload, binary, err = env.Payload(); err != nil {
					scr.warn("%v", err)
					return nil
				}
			}
			done = runExec(ctx, *execCommand, io, payload, binary, env, topic)
			var failed *execFailed
			switch {
			case ctx.Err() != nil:
				return ctx.Err() // interrupted: not acked, so delivered again
			case errors.As(done, &failed):
				scr.warn("--exec failed for message %s: %s", describe(env), failed.reason)
			case done != nil:
				return &handlerError{done}
			}
		} else {
			var line []byte
			if env != nil {
				line = scr.fmt.envelope(env, f.Data)
			} else {
				line = scr.fmt.frame(f)
			}
			if err := scr.message(line); err != nil {
				return &handlerError{err}
			}
		}
		if acking && env != nil {
			var err error
			if done != nil && *nackOnError {
				err = c.Nack(ctx, env.ID, *nackDelay, done.Error())
			} else {
				err = c.Ack(ctx, env.ID)
			}
			if err != nil {
				return err // the connection is gone: the message comes again
			}
		}
		received++
		if session.count > 0 && received >= session.count {
			return errEnough
		}
		return nil
	}
	err = r.run(ctx)
	return session.outcome(ctx, received, err)
}

// describe names a message in a diagnostic.
func describe(env *client.Envelope) string {
	if env == nil {
		return ""
	}
	s := "seq " + strconv.FormatUint(env.Seq, 10)
	if len(env.ID) > 0 {
		s = "id " + unquoteID(env.ID) + " (" + s + ", attempt " + strconv.Itoa(env.Attempt) + ")"
	}
	return s
}

// worker is pull --ack: the Go client's Pull, which acks a job when it
// was handled and nacks it (with --nack-on-error) when --exec failed.
type worker struct {
	scr         *screen
	io          command.Stdio
	exec        string
	nackOnError bool
	count       int
	cancel      context.CancelFunc

	mu       sync.Mutex
	received int
	failure  error // a failure of the command itself, which ends it
}

func (w *worker) run(ctx context.Context, m *client.Client, u, topic string, q url.Values, nackDelay time.Duration) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.cancel = cancel
	states := &sessionStates{scr: w.scr, url: u, cancel: cancel}
	opts := &client.PullOptions{NackDelay: nackDelay, OnState: states.on,
		MustExist: q.Get("must_exist") != "", Exclusive: q.Get("exclusive") != "", Takeover: q.Get("takeover") != ""}
	opts.Prefetch, _ = strconv.Atoi(q.Get("prefetch"))
	opts.TTL, _ = time.ParseDuration(q.Get("ttl"))
	err := m.Pull(wctx, topic, opts, func(job client.Job) error {
		err := w.handle(wctx, job, jobEnvelope(job), topic)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.failure == nil {
			if w.received++; w.count > 0 && w.received >= w.count {
				cancel() // this job is still acked or nacked
			}
		}
		return err
	})
	w.mu.Lock()
	failure := w.failure
	w.mu.Unlock()
	if failure != nil {
		return failure
	}
	return states.result(ctx, err)
}

// handle prints or runs one job; an error nacks it.
func (w *worker) handle(ctx context.Context, job client.Job, env *client.Envelope, topic string) error {
	if w.exec == "" {
		if err := w.scr.message(w.scr.fmt.envelope(env, envelopeFrame(env))); err != nil {
			return w.fail(ctx, err)
		}
		return nil
	}
	done := runExec(ctx, w.exec, w.io, job.Data, job.Binary, env, topic)
	var failed *execFailed
	switch {
	case done == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // interrupted: given back
	case errors.As(done, &failed):
		w.scr.warn("--exec failed for message %s: %s", describe(env), failed.reason)
		if w.nackOnError {
			return done
		}
		return nil // --ack alone: acked all the same
	}
	return w.fail(ctx, done)
}

// fail ends the worker for a failure of its own (standard output closed,
// --exec could not start); the job is nacked.
func (w *worker) fail(ctx context.Context, err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure == nil {
		w.failure = err
	}
	w.cancel()
	return err
}
