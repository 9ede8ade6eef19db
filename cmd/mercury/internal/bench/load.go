package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// loadConfig is the load one run puts on a server.
type loadConfig struct {
	scenario   string
	subs       int
	pubs       int
	publishVia string // "ws" or "http"
	size       int
	rate       float64 // per publisher per second; 0: as fast as possible
	duration   time.Duration
	layout     string
	root       string
	envelope   bool
	drain      time.Duration // give up waiting for deliveries after this long without one
	sources    sourceAddrs   // source addresses to dial from, in turn; none: the kernel's choice
	progress   io.Writer     // a progress line each second; nil: none
}

// target is one server under load.
type target struct {
	label        string
	url          string   // ws://host:port, as given
	subURLs      []string // where subscribers connect, in turn; nil: url
	pubURLs      []string // where publishers connect, in turn; nil: url
	pids         []int    // the server's processes, for its cost; none: not measured
	hierarchical bool     // subscribers also get what is published below their topic
}

// pick returns urls[i] in turn, or def when there are none.
func pick(urls []string, i int, def string) string {
	if len(urls) == 0 {
		return def
	}
	return urls[i%len(urls)]
}

// warmupTimeout bounds the wait for every subscriber to be listening.
const warmupTimeout = 15 * time.Second

// loadRun is the state of one run.
type loadRun struct {
	cfg    loadConfig
	target target
	layout *layout
	id     runID
	clock  benchClock
	hc     *http.Client

	subs []*benchSub
	pubs []*benchPub

	stopping atomic.Bool
	wg       sync.WaitGroup

	errMu      sync.Mutex
	firstErr   string
	connErrs   atomic.Int64
	disconns   atomic.Int64
	pubErrs    atomic.Int64
	publishing atomic.Bool
}

// benchSub is one subscriber. Only its reader goroutine touches hist and
// last until the run ends.
type benchSub struct {
	ws        *websocket.Conn
	delivered atomic.Int64
	warm      atomic.Bool
	hist      histogram
	last      time.Duration // arrival of the last timed message
}

// benchPub is one publisher: a connection per topic it publishes to over
// WebSocket, or its URLs over HTTP.
type benchPub struct {
	topics    []int // indexes into layout.pubTopics
	conns     []*websocket.Conn
	urls      []string
	published atomic.Int64
	expected  int64 // deliveries its messages call for; read once it ended
}

// runLoad puts cfg's load on t and reports what happened.
func runLoad(ctx context.Context, cfg loadConfig, t target) (*loadReport, error) {
	l, err := newLayout(cfg.layout, cfg.root, cfg.subs, t.hierarchical)
	if err != nil {
		return nil, command.UsageError("--layout: %v", err)
	}
	r := &loadRun{cfg: cfg, target: t, layout: l, id: newRunID(), clock: newBenchClock(),
		hc: benchHTTPClient(cfg.pubs+4, cfg.sources)}
	defer r.hc.CloseIdleConnections()
	defer r.close()

	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	if err := r.warmup(ctx); err != nil {
		return nil, err
	}

	srvBefore, selfBefore, err := r.sample()
	if err != nil {
		return nil, err
	}
	start := r.clock.now()
	stopProgress := r.startProgress(start)
	deadline := start + cfg.duration
	r.publishing.Store(true)
	var pubWG sync.WaitGroup
	for _, p := range r.pubs {
		pubWG.Go(func() { r.publish(ctx, p, start, deadline) })
	}
	pubWG.Wait()
	r.publishing.Store(false)
	pubEnd := r.clock.now()
	expected := int64(0)
	for _, p := range r.pubs {
		expected += p.expected
	}
	r.waitDrained(ctx, expected)
	end := r.clock.now()
	srvAfter, selfAfter, err := r.sample()
	stopProgress()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.close()
	return r.report(start, pubEnd, end, expected, srvBefore, srvAfter, selfBefore, selfAfter), nil
}

// connect opens the subscribers, then the publishers.
func (r *loadRun) connect(ctx context.Context) error {
	readLimit := int64(max(4*r.cfg.size+64<<10, 1<<20))
	urls := make([]string, len(r.layout.subTopics))
	for i, topic := range r.layout.subTopics {
		urls[i] = targetURL(pick(r.target.subURLs, i, r.target.url), "sub", topic, r.cfg.envelope)
	}
	conns, errs, first := dialAll(ctx, r.hc, urls, readLimit)
	r.connErrs.Add(int64(errs))
	for _, ws := range conns {
		if ws == nil {
			continue
		}
		s := &benchSub{ws: ws}
		r.subs = append(r.subs, s)
		r.wg.Go(func() { r.subscribe(ctx, s) })
	}
	if len(r.subs) == 0 {
		return &command.ExitError{Code: command.ExitConnect, Err: fmt.Errorf("no subscriber could connect: %w", first)}
	}
	if first != nil {
		r.noteErr(first)
	}

	for p := range r.cfg.pubs {
		bp := &benchPub{topics: r.layout.publisherTopics(p, r.cfg.pubs)}
		r.pubs = append(r.pubs, bp)
		for _, ti := range bp.topics {
			u := targetURL(pick(r.target.pubURLs, p, r.target.url), "pub", r.layout.pubTopics[ti], r.cfg.envelope)
			if r.cfg.publishVia == "http" {
				bp.urls = append(bp.urls, client.HTTPURL(u))
				continue
			}
			ws, err := dialWS(ctx, r.hc, u, readLimit)
			if err != nil {
				r.connErrs.Add(1)
				return &command.ExitError{Code: command.ExitConnect, Err: err}
			}
			bp.conns = append(bp.conns, ws)
			r.wg.Go(func() { r.readAnswers(ctx, ws) })
		}
	}
	return nil
}

// subscribe reads one subscriber's frames until the run ends, into a
// buffer it reuses, so the bench costs little per delivery.
func (r *loadRun) subscribe(ctx context.Context, s *benchSub) {
	buf := make([]byte, 0, max(r.cfg.size*2, 4096))
	for {
		_, rd, err := s.ws.Reader(ctx)
		if err == nil {
			buf, err = readAllInto(buf[:0], rd)
		}
		if err != nil {
			if !r.stopping.Load() {
				r.disconns.Add(1)
				r.noteErr(fmt.Errorf("a subscriber lost its connection: %w", err))
			}
			return
		}
		switch kind, sent := parsePayload(buf, r.id); kind {
		case kindTimed:
			now := r.clock.now()
			s.hist.record(now - sent)
			s.last = now
			s.delivered.Add(1)
		case kindWarmup:
			if !s.warm.Load() {
				s.warm.Store(true)
			}
		}
	}
}

// readAllInto reads rd to its end, appending to buf.
func readAllInto(buf []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var errorKey = []byte(`{"error"`)

// readAnswers reads what a publisher's connection receives: nothing in
// raw mode, an answer per frame in envelope mode (and from nchan); error
// frames count as failed publishes.
func (r *loadRun) readAnswers(ctx context.Context, ws *websocket.Conn) {
	buf := make([]byte, 0, 512)
	for {
		_, rd, err := ws.Reader(ctx)
		if err == nil {
			buf, err = readAllInto(buf[:0], rd)
		}
		if err != nil {
			if !r.stopping.Load() {
				r.noteErr(fmt.Errorf("a publisher lost its connection: %w", err))
			}
			return
		}
		if bytes.HasPrefix(buf, errorKey) {
			r.pubErrs.Add(1)
			r.noteErr(fmt.Errorf("a publish was refused: %s", buf))
		}
	}
}

// warmup publishes warm-up messages until every subscriber has received
// one: then the server has them all subscribed, whenever it registers a
// subscription.
func (r *loadRun) warmup(ctx context.Context) error {
	deadline := time.Now().Add(warmupTimeout)
	buf := make([]byte, 0, 64)
	for round := 0; ; round++ {
		waiting := 0
		for _, s := range r.subs {
			if !s.warm.Load() {
				waiting++
			}
		}
		if waiting == 0 {
			// Let the warm-up messages still in flight arrive.
			time.Sleep(50 * time.Millisecond)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers received nothing within %v of warm-up messages", waiting, len(r.subs), warmupTimeout)
		}
		for _, p := range r.pubs {
			for i := range p.topics {
				buf = appendWarmup(buf[:0], r.id, round)
				if err := r.send(ctx, p, i, buf); err != nil {
					return fmt.Errorf("failed to publish a warm-up message: %w", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// publish sends p's messages from start until deadline, at the configured
// rate or as fast as the server takes them. Each message carries the time
// it is sent.
func (r *loadRun) publish(ctx context.Context, p *benchPub, start, deadline time.Duration) {
	buf := make([]byte, 0, r.cfg.size)
	for n := 0; ctx.Err() == nil; n++ {
		now := r.clock.now()
		if r.cfg.rate > 0 {
			due := start + time.Duration(float64(n)*float64(time.Second)/r.cfg.rate)
			if due >= deadline {
				return
			}
			if now < due {
				time.Sleep(due - now)
				now = r.clock.now()
			}
		} else if now >= deadline {
			return
		}
		i := n % len(p.topics)
		buf = appendPayload(buf[:0], r.id, now, r.cfg.size)
		if err := r.send(ctx, p, i, buf); err != nil {
			r.pubErrs.Add(1)
			r.noteErr(fmt.Errorf("failed to publish: %w", err))
			if r.cfg.publishVia == "ws" {
				return // the connection is gone
			}
			continue
		}
		p.published.Add(1)
		p.expected += int64(r.layout.fanout[p.topics[i]])
	}
}

// send publishes one message to p's i-th topic.
func (r *loadRun) send(ctx context.Context, p *benchPub, i int, msg []byte) error {
	if r.cfg.publishVia == "ws" {
		return p.conns[i].Write(ctx, websocket.MessageText, msg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.urls[i], bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.cfg.envelope {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %d %s", p.urls[i], resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// delivered returns the deliveries so far.
func (r *loadRun) delivered() int64 {
	var n int64
	for _, s := range r.subs {
		n += s.delivered.Load()
	}
	return n
}

// waitDrained waits until every expected delivery arrived, or none
// arrived for the drain time.
func (r *loadRun) waitDrained(ctx context.Context, expected int64) {
	last, lastChange := r.delivered(), time.Now()
	for ctx.Err() == nil {
		d := r.delivered()
		if d >= expected {
			return
		}
		if d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > r.cfg.drain {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sample reads the server's and the bench's own cost.
func (r *loadRun) sample() (srv, self procSample, err error) {
	if len(r.target.pids) > 0 {
		if srv, err = sampleProcs(r.target.pids); err != nil {
			return srv, self, fmt.Errorf("failed to measure the server: %w", err)
		}
	}
	if self, err = sampleSelf(); err != nil {
		return srv, self, fmt.Errorf("failed to measure the bench: %w", err)
	}
	return srv, self, nil
}

// startProgress prints a progress line each second until the returned
// function is called.
func (r *loadRun) startProgress(start time.Duration) (stop func()) {
	if r.cfg.progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastPub, lastDel int64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var pub int64
			for _, p := range r.pubs {
				pub += p.published.Load()
			}
			del := r.delivered()
			phase := "publishing"
			if !r.publishing.Load() {
				phase = "draining"
			}
			fmt.Fprintf(r.cfg.progress, "%s %5.1fs %s: published %s (%s/s), delivered %s (%s/s), errors %d\n",
				r.target.label, (r.clock.now() - start).Seconds(), phase,
				fmtCount(float64(pub)), fmtCount(float64(pub-lastPub)),
				fmtCount(float64(del)), fmtCount(float64(del-lastDel)),
				r.connErrs.Load()+r.disconns.Load()+r.pubErrs.Load())
			lastPub, lastDel = pub, del
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *loadRun) noteErr(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.firstErr == "" {
		r.firstErr = err.Error()
	}
}

// close ends every connection and waits for the run's goroutines.
func (r *loadRun) close() {
	r.stopping.Store(true)
	for _, s := range r.subs {
		s.ws.CloseNow()
	}
	for _, p := range r.pubs {
		closeAll(p.conns)
	}
	r.wg.Wait()
}

// report puts the run's figures together; the run's goroutines are done.
func (r *loadRun) report(start, pubEnd, end time.Duration, expected int64, srvBefore, srvAfter, selfBefore, selfAfter procSample) *loadReport {
	cfg := r.cfg
	rep := &loadReport{
		Label: r.target.label, Scenario: cfg.scenario, URL: r.target.url,
		Subscribers: cfg.subs, Publishers: cfg.pubs, PublishVia: cfg.publishVia,
		Size: cfg.size, Rate: cfg.rate, DurationS: cfg.duration.Seconds(),
		Layout: cfg.layout, Envelope: cfg.envelope, Expected: expected,
	}
	var hist histogram
	last := start
	for _, s := range r.subs {
		hist.merge(&s.hist)
		rep.Delivered += s.delivered.Load()
		last = max(last, s.last)
	}
	for _, p := range r.pubs {
		rep.Published += p.published.Load()
	}
	if d := pubEnd - start; d > 0 {
		rep.PublishedPerSec = float64(rep.Published) / d.Seconds()
	}
	rep.Loss = max(0, expected-rep.Delivered)
	rep.Unexpected = max(0, rep.Delivered-expected)
	if d := last - start; d > 0 {
		rep.ElapsedS = d.Seconds()
		rep.DeliveredPerSec = float64(rep.Delivered) / d.Seconds()
	}
	rep.Latency = newLatencyReport(&hist)
	rep.Errors = errorReport{Connect: r.connErrs.Load(), Disconnect: r.disconns.Load(), Publish: r.pubErrs.Load(), First: r.firstErr}
	window := end - start
	if len(r.target.pids) > 0 {
		c := newCostReport(r.target.pids, srvBefore, srvAfter, window, rep.Delivered)
		rep.Server = &c
	}
	rep.Generator = newCostReport(nil, selfBefore, selfAfter, window, rep.Delivered)
	return rep
}
