package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// The soak: users' clients, which never ping, held on brokers running with
// their default ping interval (30 s) and write timeout (10 s) through
// steady traffic and a silence longer than two ping intervals. A deadline
// or timer that outlives what it was set for shows only after the first
// ping: each client must get every message, in order, on its first
// connection.

// soakPlan is how long and how hard a soak runs.
type soakPlan struct {
	Traffic time.Duration // each stretch of steady traffic
	Silence time.Duration // the quiet after each stretch
	Cycles  int           // stretches of traffic, each followed by a silence
	Rate    int           // messages per second on each route
	Copies  int           // clients of each kind
}

// messages is how many messages each client should receive: the traffic,
// and one after the last silence.
func (p soakPlan) messages() int { return p.Cycles*int(p.Traffic.Seconds())*p.Rate + 1 }

// sseCopies is how many EventSources the page opens: a browser keeps at
// most 6 HTTP/1.1 connections per host, and an event stream holds one.
func (p soakPlan) sseCopies() int { return min(p.Copies, 5) }

func TestSoak(t *testing.T) {
	// It mostly waits: parallel, it runs beside any other parallel test
	// once the package's sequential ones are done.
	t.Parallel()
	run := startSoak(t, soakPlan{Traffic: 90 * time.Second, Silence: 70 * time.Second, Cycles: 1, Rate: 1, Copies: 1})
	run.publishAll(nil)
	run.waitDelivered()
	t.Log("\n" + run.table())
	run.check()
}

// soakBroker is one broker of the soak, the connections its clients
// open, and the routes the soak publishes to.
type soakBroker struct {
	name      string
	proc      *brokerProc
	hc        *http.Client
	header    http.Header // of the publishers' requests
	conns     int         // WebSocket connections its clients open
	streams   int         // event streams its clients open
	posts     []string    // URLs each message is POSTed to
	post      *soakTally
	publisher *soakPublisher
}

// soakRun is a soak under way.
type soakRun struct {
	t       *testing.T
	plan    soakPlan
	brokers []*soakBroker
	tallies []*soakTally
	refresh []func() // bring polled tallies up to date
	sent    int
}

// startSoak starts three brokers with their default timers — a plain one,
// one that allows the page's origin, one serving TLS — connects every
// kind of client, and waits until all are connected.
func startSoak(t *testing.T, plan soakPlan) *soakRun {
	t.Helper()
	requireNode(t)
	requireMojo(t)
	requireChromium(t)
	r := &soakRun{t: t, plan: plan}
	n := plan.Copies

	plain := r.addBroker("plain", startBroker(t), nil, nil)
	for i := range n {
		r.add(startSoakRaw(t, "raw /sub", plain.proc.WS+"/sub/soak/live", nil, false))
		r.add(startSoakRaw(t, "raw /bus", plain.proc.WS+"/bus/soak/bus", nil, false))
		queue := fmt.Sprintf("/soak/queue%d", i)
		r.add(startSoakRaw(t, "raw /pull, envelope, acks", plain.proc.WS+"/pull"+queue+"?envelope=1", nil, true))
		plain.posts = append(plain.posts, plain.proc.HTTP+"/push"+queue)
		r.add(startSoakNode(t, plain.proc.WS+"/sub/soak/live"))
		cli := startSoakCLI(t, plain.proc.WS, "/soak/live")
		r.add(cli.tally)
		r.refresh = append(r.refresh, cli.refresh)
	}
	r.add(startSoakMojo(t, plain.proc.WS+"/bus/soak/bus", n)...)
	plain.conns = 6*n + 1 // and the publisher
	plain.posts = append(plain.posts, plain.proc.HTTP+"/pub/soak/live", plain.proc.HTTP+"/bus/soak/bus")

	// A dashboard served from another origin, allowed with
	// --allow-origin: WebSockets, and EventSources (which need CORS).
	pageSrv := startSoakPageServer(t)
	br := newBrowser(t, pageSrv.URL)
	page := r.addBroker("page's", startBroker(t, "--allow-origin", pageSrv.URL), nil,
		http.Header{"Origin": {pageSrv.URL}})
	r.addPage(openSoakPage(t, br, pageSrv, page.proc, "/soak/live", n, plan.sseCopies()))
	page.conns = n + 1
	page.streams = plan.sseCopies()
	page.posts = append(page.posts, page.proc.HTTP+"/pub/soak/live")

	certFile, keyFile := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
	pool := x509.NewCertPool()
	pool.AddCert(writeCert(t, certFile, keyFile, 1))
	tlsHC := client.NewHTTPClient(&tls.Config{RootCAs: pool})
	secure := r.addBroker("TLS", startBroker(t, "--tls-cert", certFile, "--tls-key", keyFile), tlsHC, nil)
	for range n {
		r.add(startSoakRaw(t, "raw /sub over TLS", secure.proc.WS+"/sub/soak/live", tlsHC, false))
	}
	secure.conns = n + 1
	secure.posts = append(secure.posts, secure.proc.HTTP+"/pub/soak/live")

	r.waitConnected()
	return r
}

// addBroker adds a broker with its POST publisher and its WebSocket
// publisher (envelope mode, so that it is answered each message). With
// --allow-origin, a broker requires an Origin: its publishers send header.
func (r *soakRun) addBroker(name string, proc *brokerProc, hc *http.Client, header http.Header) *soakBroker {
	if hc == nil {
		hc = client.NewHTTPClient(nil)
	}
	r.t.Cleanup(hc.CloseIdleConnections)
	b := &soakBroker{name: name, proc: proc, hc: hc, header: header, post: newSoakTally("POST to " + name + " broker")}
	b.post.opened()
	b.publisher = startSoakPublisher(r.t, "WebSocket publisher, envelope, to "+name+" broker", proc.WS+"/pub/soak/side", hc, header)
	r.brokers = append(r.brokers, b)
	r.add(b.post, b.publisher.tally)
	return b
}

func (r *soakRun) addPage(p *soakPage) {
	r.add(p.tallies...)
	r.refresh = append(r.refresh, p.refresh)
}

func (r *soakRun) add(tallies ...*soakTally) { r.tallies = append(r.tallies, tallies...) }

// waitConnected waits until every client is connected and each broker
// logged the connections expected.
func (r *soakRun) waitConnected() {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var missing []string
		r.update()
		for _, tl := range r.tallies {
			if tl.openCount() == 0 {
				missing = append(missing, tl.kind+" ("+tl.verdict(0)+")")
			}
		}
		for _, b := range r.brokers {
			if got := b.logCount(`msg="connection opened"`); got != b.conns {
				missing = append(missing, fmt.Sprintf("%s broker: %d of %d connections", b.name, got, b.conns))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("not connected within 60s: %s", strings.Join(missing, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *soakRun) update() {
	for _, f := range r.refresh {
		f()
	}
}

// publishAll publishes the plan's messages: steady traffic then silence,
// each cycle, then one message more. tick, when set, is called after
// each message.
func (r *soakRun) publishAll(tick func(sent int)) {
	interval := time.Second / time.Duration(r.plan.Rate)
	for range r.plan.Cycles {
		start := time.Now()
		for i := range int(r.plan.Traffic.Seconds()) * r.plan.Rate {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			r.publish()
			if tick != nil {
				tick(r.sent)
			}
		}
		time.Sleep(r.plan.Silence)
	}
	r.publish()
}

// publish sends the next message on every route of every broker.
func (r *soakRun) publish() {
	r.sent++
	n := r.sent
	for _, b := range r.brokers {
		ok := true
		for _, u := range b.posts {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := client.Post(ctx, b.hc, u, "application/json", soakPayload(n), b.header)
			cancel()
			if err != nil || resp.Status != http.StatusOK {
				b.post.problem("POST %d to %s: %v %v", n, u, resp, err)
				ok = false
			}
		}
		if ok {
			b.post.add(n)
		}
		b.publisher.publish(n)
	}
}

// waitDelivered waits until every client has as many messages as were
// sent, or for 30 s.
func (r *soakRun) waitDelivered() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r.update()
		if !slices.ContainsFunc(r.tallies, func(tl *soakTally) bool { return tl.count() < r.sent }) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check fails the test for each client that missed a message, got one
// out of order or twice, or connected more than once, and for each broker
// that saw a connection end.
func (r *soakRun) check() {
	r.t.Helper()
	r.update()
	for _, tl := range r.tallies {
		if why := tl.verdict(r.sent); why != "" {
			r.t.Errorf("%s: %s", tl.kind, why)
		}
	}
	for _, b := range r.brokers {
		counts := []struct {
			what string
			want int
		}{
			{`msg="connection opened"`, b.conns}, {`msg="event stream opened"`, b.streams},
			{`msg="connection closed`, 0}, {`msg="connection dropped`, 0},
			{`msg="event stream closed`, 0}, {`msg="slow consumer closed"`, 0},
		}
		for _, c := range counts {
			if got := b.logCount(c.what); got != c.want {
				r.t.Errorf("%s broker logged %s %d times, want %d:\n%s", b.name, c.what, got, c.want, b.logLines(c.what))
			}
		}
	}
}

func (b *soakBroker) logCount(what string) int { return strings.Count(b.proc.logs.String(), what) }

// logLines returns the first lines of the broker's log that contain what.
func (b *soakBroker) logLines(what string) string {
	var out []string
	for line := range strings.Lines(b.proc.logs.String()) {
		if strings.Contains(line, what) && len(out) < 10 {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}

// table sums the tallies by kind of client: clients, messages delivered
// in order on the first connection over messages expected, reconnections.
func (r *soakRun) table() string {
	r.update()
	type row struct{ clients, delivered, expected, reconnects, failed int }
	var kinds []string
	rows := map[string]*row{}
	for _, tl := range r.tallies {
		w, ok := rows[tl.kind]
		if !ok {
			w = &row{}
			rows[tl.kind] = w
			kinds = append(kinds, tl.kind)
		}
		tl.mu.Lock()
		w.clients++
		w.expected += r.sent
		for i, n := range tl.got {
			if n == i+1 && i < r.sent {
				w.delivered++
			}
		}
		w.reconnects += max(tl.opens-1, 0)
		tl.mu.Unlock()
		if tl.verdict(r.sent) != "" {
			w.failed++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-52s %7s %10s %10s %8s %10s %6s\n", "client", "clients", "delivered", "expected", "%", "reconnects", "failed")
	for _, k := range kinds {
		w := rows[k]
		fmt.Fprintf(&b, "%-52s %7d %10d %10d %8.2f %10d %6d\n", k, w.clients, w.delivered, w.expected,
			100*float64(w.delivered)/float64(max(w.expected, 1)), w.reconnects, w.failed)
	}
	return b.String()
}
