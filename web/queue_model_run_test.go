package web

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/web/client"
)

// The queue policy of the model runs: timers short enough to fire within
// a run.
const (
	modelTopic       = "/mq/jobs"
	modelMaxAttempts = 3
	modelAckTimeout  = 800 * time.Millisecond
	modelTTL         = 1500 * time.Millisecond
)

func modelPolicies() (*broker.Policies, error) {
	return broker.NewPolicies([]broker.Policy{{Bus: "/mq", Durable: true, Queue: broker.QueuePolicy{
		MaxAttempts: modelMaxAttempts, AckTimeout: modelAckTimeout, TTL: modelTTL}}})
}

// modelRun runs one list of operations against a fresh system and model.
type modelRun struct {
	sys     queueSystem
	model   *queueModel
	rng     *rand.Rand
	pullers []*modelConn // connected, oldest first
	nextN   int
	nextID  int
	lastUse time.Time // when the test last pushed, pulled, settled or restarted
}

// runModel runs ops on the system start makes and returns the model with
// its verdict.
func runModel(start func() (queueSystem, error), seed uint64, ops []op) (*queueModel, error) {
	sys, err := start()
	if err != nil {
		return nil, err
	}
	r := &modelRun{sys: sys, model: newQueueModel(modelMaxAttempts, modelAckTimeout),
		rng: rand.New(rand.NewPCG(seed, 1))}
	defer func() {
		for _, p := range r.pullers {
			p.expectClose.Store(true)
			p.conn.CloseNow()
			<-p.done
		}
		sys.close()
	}()
	r.lastUse = time.Now()
	for i, o := range ops {
		r.tracef("#%d %s", i, o)
		r.checkIdle()
		if err := r.do(o); err != nil {
			return r.model, fmt.Errorf("operation #%d %s: %w", i, o, err)
		}
		r.model.mu.Lock()
		r.model.counts.ops++
		r.model.mu.Unlock()
	}
	r.checkIdle()
	if err := r.drain(); err != nil {
		return r.model, fmt.Errorf("final drain: %w", err)
	}
	return r.model, nil
}

func (r *modelRun) tracef(format string, args ...any) {
	r.model.mu.Lock()
	defer r.model.mu.Unlock()
	r.model.tracef(format, args...)
}

// checkIdle tells the model the queue may have expired when nobody used
// it for about its TTL (sleeps add up). The expire operation checks that
// it does.
func (r *modelRun) checkIdle() {
	if r.puller(0) != nil {
		r.lastUse = time.Now()
		return
	}
	if time.Since(r.lastUse) > modelTTL-300*time.Millisecond {
		r.tracef("unused for %s: the queue may have expired", time.Since(r.lastUse).Round(time.Millisecond))
		r.model.queueExpired(false)
	}
}

func (r *modelRun) do(o op) error {
	switch o.kind {
	case opPush, opPull, opTakeover:
		// What uses the queue; acks need a puller (checkIdle).
		defer func() { r.lastUse = time.Now() }()
	case opClose, opKill:
		// A puller leaving uses the queue (its TTL runs from then); with
		// no puller there is nobody to close, and the broker sees nothing.
		if r.puller(0) != nil {
			defer func() { r.lastUse = time.Now() }()
		}
	case opRestart:
		// A broker killed in a cluster records no use: the queue's last
		// use is the last one the cluster recorded, and its pullers' leases
		// (15 s) may outlast the TTL (docs/clustering.md, "Queue lifetime").
		if *modelClusterFlag == 0 {
			defer func() { r.lastUse = time.Now() }()
		}
	}
	switch o.kind {
	case opPush:
		for i := range o.arg(0) {
			if err := r.push(o.arg(1) == 1 && i == 0); err != nil {
				return err
			}
		}
	case opPull:
		return r.pull(o.mode == "e", o.arg(0), o.arg(1) == 1, false)
	case opTakeover:
		return r.pull(o.mode == "e", o.arg(0), false, true)
	case opAck, opNack:
		p := r.puller(o.arg(0))
		if p == nil || !p.mp.env || p.closed() {
			return nil
		}
		ms := r.model.heldBy(p.mp, o.arg(1))
		r.tracef("puller %d settles %s", p.mp.id, names(ms))
		p.settle(ms, o.kind == opAck, time.Duration(o.arg(2))*time.Millisecond)
	case opSleep:
		time.Sleep(time.Duration(o.arg(0)) * time.Millisecond)
	case opClose, opKill:
		p := r.puller(o.arg(0))
		if p == nil {
			return nil
		}
		r.forget(p)
		if o.kind == opClose {
			quiet := !p.mp.env && r.quiet(p)
			r.tracef("puller %d leaves, quiet %v", p.mp.id, quiet)
			p.closeNormally(quiet)
		} else {
			r.model.mu.Lock()
			r.model.counts.kills++
			r.model.mu.Unlock()
			p.kill(time.Duration(5+r.rng.IntN(40)) * time.Millisecond)
		}
		// The broker sees a reset later than the test: wait, so that the
		// next operation meets the pullers the model expects.
		return r.waitPullers(len(r.pullers))
	case opRestart:
		// Every puller may be on the broker that restarts: the model
		// cannot tell them apart before.
		for _, p := range r.pullers {
			p.leaving()
		}
		node, err := r.sys.restart()
		if err != nil {
			return err
		}
		r.tracef("broker %d restarted", node)
		if *modelClusterFlag > 0 {
			r.model.brokerKilled(node)
		}
		for _, p := range r.pullers {
			if p.node != node {
				p.conn.CloseNow()
			}
			p.wait()
		}
		r.pullers = nil
		r.model.restarted()
		if *modelBinaryFlag {
			r.model.crashed()
		}
		// In a cluster, a killed broker's pullers stay registered until
		// their lease ends (15 s).
		return r.waitPullers(0)
	case opExpire, opEdge:
		return r.idle(o.kind == opEdge)
	default:
		return fmt.Errorf("unknown operation %q", o.kind)
	}
	return nil
}

func names(ms []*modelMsg) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = "m" + strconv.Itoa(m.n)
	}
	return strings.Join(s, ",")
}

// puller returns the i-th connected puller (modulo), dropping the ones the
// broker closed; nil when none is.
func (r *modelRun) puller(i int) *modelConn {
	live := r.pullers[:0]
	for _, p := range r.pullers {
		if !p.closed() {
			live = append(live, p)
		}
	}
	r.pullers = live
	if len(live) == 0 {
		return nil
	}
	return live[i%len(live)]
}

func (r *modelRun) forget(p *modelConn) {
	for i, x := range r.pullers {
		if x == p {
			r.pullers = append(r.pullers[:i], r.pullers[i+1:]...)
			return
		}
	}
}

// push sends the next message: {"m":N}, or with a pad of 200–700 KB.
func (r *modelRun) push(large bool) error {
	r.nextN++
	n := r.nextN
	body := fmt.Sprintf(`{"m":%d}`, n)
	if large {
		body = fmt.Sprintf(`{"m":%d,"pad":"%s"}`, n, strings.Repeat("x", 200<<10+r.rng.IntN(500<<10)))
	}
	r.model.pushStarted(n)
	idleSince := r.lastUse
	seq, err := modelPush(r.sys.httpBase(), modelTopic, []byte(body))
	if r.puller(0) == nil && time.Since(idleSince) > modelTTL-300*time.Millisecond {
		// The broker uses the queue when the push arrives, which a large
		// body on a busy machine delays: it may have expired before.
		r.tracef("push of m%d answered %s after the queue's last use: it may have expired before", n, time.Since(idleSince).Round(time.Millisecond))
		r.model.queueExpiredBefore(n)
	}
	r.lastUse = time.Now()
	if err != nil {
		r.model.mu.Lock()
		r.model.violate("push of m%d refused: %v", n, err)
		r.model.mu.Unlock()
		return nil
	}
	r.model.pushConfirmed(n, seq)
	r.tracef("pushed m%d = id %d (%d bytes)", n, seq, len(body))
	return nil
}

// pull connects a puller and checks the broker's answer: an exclusive
// queue refuses another puller, and an exclusive puller other pullers,
// with 4409.
func (r *modelRun) pull(env bool, prefetch int, exclusive, takeover bool) error {
	r.puller(0) // drop the closed ones
	idle, idleSince := len(r.pullers) == 0, r.lastUse
	q := url.Values{"prefetch": {strconv.Itoa(prefetch)}}
	if env {
		q.Set("envelope", "1")
	}
	if exclusive {
		q.Set("exclusive", "1")
	}
	if takeover {
		q.Set("takeover", "1")
		for _, p := range r.pullers {
			r.model.mu.Lock()
			p.mp.evicted = true
			r.model.mu.Unlock()
			p.leaving()
		}
		r.model.mu.Lock()
		r.model.counts.takeovers++
		r.model.mu.Unlock()
	}
	stats, _, err := modelQueueStats(r.sys.httpBase(), modelTopic)
	if err != nil {
		return err
	}
	refuse := !takeover && (r.exclusiveHeld() || exclusive && stats.Pullers > 0)
	r.nextID++
	mp := &modelPuller{id: r.nextID, env: env, dialed: time.Now()}
	u, node := r.sys.wsURL("pull", modelTopic, q)
	mc, err := dialModelConn(r.model, mp, u, refuse)
	if err != nil {
		return fmt.Errorf("failed to connect a puller: %w", err)
	}
	mc.node, mp.node = node, node
	r.tracef("puller %d connects to broker %d: %s", mp.id, node, q.Encode())
	if idle && time.Since(idleSince) > modelTTL-300*time.Millisecond {
		// As for a slow push: the queue may have expired before it came.
		r.tracef("puller %d connected %s after the queue's last use: it may have expired before", mp.id, time.Since(idleSince).Round(time.Millisecond))
		r.model.queueExpired(false)
	}
	if refuse {
		mc.wait()
		if code := client.CloseStatus(mc.err); code != 4409 {
			mc.violate("puller %d on a queue with an exclusive puller: closed with %d %v, want 4409", mp.id, code, mc.err)
		}
		return nil
	}
	if takeover {
		old := r.pullers
		r.pullers = nil
		for _, p := range old {
			r.waitEvicted(p, mc)
		}
	}
	r.pullers = append(r.pullers, mc)
	mc.exclusive = exclusive || takeover
	return r.waitPullers(len(r.pullers))
}

// waitEvicted waits until the broker closes p, taken over by mc: the
// queue is mc's alone, so p must go, with 4409 (in a cluster too, where
// the broker holding p learns of the takeover from NATS).
func (r *modelRun) waitEvicted(p, mc *modelConn) {
	const within = 10 * time.Second
	select {
	case <-p.done:
		if code := client.CloseStatus(p.err); code != 4409 && !mc.closed() {
			p.violate("puller %d taken over by puller %d: closed with %d %v, want 4409", p.mp.id, mc.mp.id, code, p.err)
		}
	case <-time.After(within):
		if !mc.closed() {
			p.violate("puller %d is still open %s after puller %d took the queue over", p.mp.id, within, mc.mp.id)
		}
		p.conn.CloseNow()
		<-p.done
	}
}

func (r *modelRun) exclusiveHeld() bool {
	for _, p := range r.pullers {
		if p.exclusive {
			return true
		}
	}
	return false
}

// waitPullers waits until the broker counts n pullers on the queue, so the
// operations that follow meet them there.
func (r *modelRun) waitPullers(n int) error {
	wait := 10 * time.Second
	if *modelClusterFlag > 0 {
		wait = 25 * time.Second // outlasts a killed broker's puller lease
	}
	deadline := time.Now().Add(wait)
	for {
		stats, _, err := modelQueueStats(r.sys.httpBase(), modelTopic)
		if err != nil {
			return err
		}
		r.puller(0)
		if stats.Pullers == len(r.pullers) {
			return nil
		}
		if time.Now().After(deadline) {
			r.model.mu.Lock()
			r.model.violate("the broker counts %d pullers after %s, %d are connected", stats.Pullers, wait, len(r.pullers))
			r.model.mu.Unlock()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet waits, a second at most, until p has read every frame the broker
// wrote to it, and the broker has nothing in flight but what envelope
// pullers hold, and nothing ready: then a raw puller that leaves loses
// nothing.
func (r *modelRun) quiet(p *modelConn) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		base := r.sys.httpBase()
		stats, _, err := modelQueueStats(base, modelTopic)
		if err != nil {
			return false
		}
		var conns []struct {
			Remote      string `json:"remote"`
			MessagesOut uint64 `json:"messages_out"`
		}
		if err := getJSON(base+"/api/connections", &conns); err != nil {
			return false
		}
		for _, c := range conns {
			if c.Remote == p.local && c.MessagesOut == p.frames.Load() &&
				stats.InFlight == r.model.heldCount() && stats.Waiting == r.model.delayedCount() {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// idle makes the queue unused: every puller leaves. expire waits out the
// TTL, after which the queue must be gone (README "Queue lifetime");
// edge pushes just before the TTL ends, a push that must not be lost.
func (r *modelRun) idle(edge bool) error {
	for _, p := range r.pullers {
		p.closeNormally(false)
	}
	r.pullers = nil
	if err := r.waitPullers(0); err != nil {
		return err
	}
	left := time.Now()
	if edge {
		time.Sleep(modelTTL - time.Duration(r.rng.IntN(80))*time.Millisecond)
		r.model.queueExpired(false)
		return r.push(false)
	}
	time.Sleep(modelTTL + 200*time.Millisecond)
	for {
		_, exists, err := modelQueueStats(r.sys.httpBase(), modelTopic)
		if err != nil {
			return err
		}
		if !exists {
			r.tracef("queue expired")
			r.model.queueExpired(true)
			return nil
		}
		if time.Since(left) > 3*modelTTL {
			r.model.mu.Lock()
			r.model.violate("the queue, unused, is still there %s after its TTL %s", time.Since(left).Round(time.Millisecond), modelTTL)
			r.model.mu.Unlock()
			r.model.queueExpired(false)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain takes over the queue with an envelope puller that acks everything
// until every confirmed message is accounted for, or nothing more comes;
// then checks the end state with the dead letters.
func (r *modelRun) drain() error {
	const quiet = 2 * time.Second // outlasts the longest nack delay plus an ack timeout
	var p *modelConn
	lastCount, lastProgress := -1, time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p == nil || p.closed() {
			if err := r.pull(true, 4, false, true); err != nil {
				return err
			}
			if len(r.pullers) == 0 { // the broker closed it already
				time.Sleep(50 * time.Millisecond)
				continue
			}
			p = r.pullers[len(r.pullers)-1]
			lastProgress = time.Now() // quiet counts from the connection
		}
		if ms := r.model.heldBy(p.mp, 1<<20); len(ms) > 0 {
			p.settle(ms, true, 0)
		}
		r.model.mu.Lock()
		count := r.model.counts.deliveries
		r.model.mu.Unlock()
		if count != lastCount {
			lastCount, lastProgress = count, time.Now()
		}
		if r.model.unresolved() == 0 && time.Since(lastProgress) > 200*time.Millisecond || time.Since(lastProgress) > quiet {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	dead, err := modelDeadLetters(r.sys.httpBase(), modelTopic)
	if err != nil {
		return err
	}
	r.model.finish(dead)
	return nil
}
