package test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/test/syncbuf"
	"github.com/mercury-broker/mercury/web/client"
)

// The soak test's clients. Each records into a soakTally what it
// received; none of them pings, as users' clients do not.

// startSoakRaw connects our Go client (coder/websocket, which pings only
// when asked) to url. With pull, it is an envelope-mode puller that acks
// each message as it comes.
func startSoakRaw(t testing.TB, kind, url string, hc *http.Client, pull bool) *soakTally {
	t.Helper()
	tally := newSoakTally(kind)
	c := dial(t, url, &client.Options{HTTPClient: hc, Envelope: pull})
	tally.opened()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					tally.problem("read: %v", err)
				}
				return
			}
			if !pull {
				tally.addPayload(f.Data)
				continue
			}
			in, err := client.ParseIncoming(f.Data)
			if err != nil || in.Message == nil {
				tally.problem("unexpected frame %.100q", f.Data)
				continue
			}
			if in.Message.Attempt != 1 {
				tally.problem("%s delivered again (attempt %d)", in.Message.Data, in.Message.Attempt)
			}
			tally.addPayload(in.Message.Data)
			if err := c.Ack(ctx, in.Message.ID); err != nil && ctx.Err() == nil {
				tally.problem("ack: %v", err)
			}
		}
	}()
	t.Cleanup(func() { cancel(); c.CloseNow(); <-done })
	return tally
}

// soakPublisher publishes over one WebSocket in envelope mode, so that
// the broker answers every frame: its tally counts the answers.
type soakPublisher struct {
	tally  *soakTally
	c      *client.Conn
	failed bool // a publish failed: the first failure says why, the missing answers say the rest
}

func startSoakPublisher(t testing.TB, kind, url string, hc *http.Client, header http.Header) *soakPublisher {
	t.Helper()
	p := &soakPublisher{tally: newSoakTally(kind), c: dial(t, url, &client.Options{HTTPClient: hc, Header: header, Envelope: true})}
	p.tally.opened()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for oks := 0; ; {
			f, err := p.c.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.tally.problem("read: %v", err)
				}
				return
			}
			switch in, err := client.ParseIncoming(f.Data); {
			case err == nil && in.OK != nil:
				oks++
				p.tally.add(oks)
			default:
				p.tally.problem("answer %.100q", f.Data)
			}
		}
	}()
	t.Cleanup(func() { cancel(); p.c.CloseNow(); <-done })
	return p
}

func (p *soakPublisher) publish(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.c.WriteText(ctx, string(soakPayload(n))); err != nil && !p.failed {
		p.failed = true
		p.tally.problem("publish %d: %v", n, err)
	}
}

// soakLine is one line printed by node/wsclient.js or perl/mojows.pl.
type soakLine struct {
	Client int     `json:"client"`
	Open   bool    `json:"open"`
	Text   *string `json:"text"`
	Close  *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"close"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
}

// startSoakProcess runs a client program that opens n connections and
// reports on them as soakLines. Its standard input stays open: the Node
// client leaves when it ends.
func startSoakProcess(t testing.TB, kind string, n int, name string, args ...string) []*soakTally {
	t.Helper()
	tallies := make([]*soakTally, n)
	for i := range tallies {
		tallies[i] = newSoakTally(kind)
	}
	all := func(format string, args ...any) {
		for _, tl := range tallies {
			tl.problem(format, args...)
		}
	}
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev soakLine
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Client < 0 || ev.Client >= n {
				all("%s printed %.100q", name, sc.Text())
				continue
			}
			tl := tallies[ev.Client]
			switch {
			case ev.Open:
				tl.opened()
			case ev.Text != nil:
				tl.addPayload([]byte(*ev.Text))
			case ev.Close != nil:
				tl.problem("closed: %d %s", ev.Close.Code, ev.Close.Reason)
			case ev.Status != 0:
				tl.problem("handshake answered %d %s", ev.Status, ev.Body)
			default:
				tl.problem("error: %s", ev.Error)
			}
		}
		select {
		case <-stopping:
		default:
			all("%s exited: %s", name, strings.TrimSpace(stderr.String()))
		}
	}()
	t.Cleanup(func() {
		close(stopping)
		stdin.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return tallies
}

// startSoakNode runs Node's ws client (test/node), which never pings
// unless asked.
func startSoakNode(t testing.TB, url string) *soakTally {
	t.Helper()
	requireNode(t)
	return startSoakProcess(t, "node ws", 1, "node", filepath.Join(nodeDir, "wsclient.js"), url)[0]
}

// requireMojo skips a test when Perl's Mojolicious is missing, except in
// CI, where that is a failure.
func requireMojo(t testing.TB) {
	t.Helper()
	if err := exec.Command("perl", "-MMojo::UserAgent", "-e", "1").Run(); err == nil {
		return
	}
	msg := "Perl's Mojolicious is needed (apt-get install libmojolicious-perl)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startSoakMojo opens n connections with one Mojo::UserAgent, as
// Minion::Notifier's listener does.
func startSoakMojo(t testing.TB, url string, n int) []*soakTally {
	t.Helper()
	requireMojo(t)
	return startSoakProcess(t, "Mojo::UserAgent", n, "perl", filepath.Join("perl", "mojows.pl"), url, strconv.Itoa(n))
}

// soakCLI is a running 'mercury sub'.
type soakCLI struct {
	tally *soakTally
	proc  *cliProc
}

func startSoakCLI(t testing.TB, server, topic string) *soakCLI {
	t.Helper()
	c := &soakCLI{tally: newSoakTally("mercury sub")}
	c.proc = startCLI(t, cliEnv(t, "MERCURY_URL="+server), "sub", topic)
	go func() {
		for line := range c.proc.lines {
			c.tally.addPayload([]byte(line))
		}
	}()
	return c
}

// refresh counts the connections the command says it made: "connected
// to", then "reconnected to" for each one after.
func (c *soakCLI) refresh() {
	stderr := c.proc.stderr.String()
	c.tally.mu.Lock()
	defer c.tally.mu.Unlock()
	c.tally.opens = strings.Count(stderr, "connected to ")
}
