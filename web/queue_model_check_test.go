package web

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// queueModel is what the README promises about a reliable queue, kept
// beside a real one: every delivery, settle and disruption is checked
// against it as it happens, and the end state once everything is drained.
//
// The promises checked:
//   - a raw-pulled message is delivered at most once (to anyone, ever);
//   - an envelope-acked message is acked exactly once and never delivered
//     after the ack; no two live pullers hold it within its ack timeout;
//   - attempts count up (within one broker life) and never pass
//     max_attempts; a nack's delay holds, across restarts too;
//   - nothing confirmed disappears: at the end each confirmed push was
//     acked, raw-pulled, or is a dead letter (only after max_attempts), or
//     its queue expired unused for its TTL;
//   - across a crash (kill -9, -model.binary), at least once: a settlement
//     no synced write followed may be undone (queue_model_crash_test.go),
//     and nothing else.
//
// What the model cannot know is allowed, and counted: a raw puller that
// disconnects may have had messages written to its socket that it never
// read (raw is at most once); an envelope puller that disconnects may have
// spent an attempt the test never saw.
type queueModel struct {
	maxAttempts int
	ackTimeout  time.Duration

	mu         sync.Mutex
	life       int // broker lives: restarts so far
	msgs       map[int]*modelMsg
	bySeq      map[uint64]*modelMsg
	violations []string
	trace      []string // what happened, for the failure report
	lastBad    int      // the trace's length at the last violation
	counts     modelCounts
	now        func() time.Time
	syncs      int // confirmed pushes: each is a synced write after all before it
}

type modelCounts struct {
	ops, pushes, deliveries, rawDeliveries, acks, nacks, refusedSettles int
	restarts, expiries, takeovers, kills                                int
	deadLetters, expired, rawLost, lateFrames                           int
	crashes, undone                                                     int
}

func (c modelCounts) String() string {
	crash := ""
	if c.crashes > 0 {
		crash = fmt.Sprintf("; %d restarts were kill -9, after which %d settlements not yet synced were undone (allowed)", c.crashes, c.undone)
	}
	return fmt.Sprintf("%d operations: %d pushes, %d deliveries (%d raw), %d acks, %d nacks (%d settles refused), %d takeovers, %d kills, %d restarts, %d expiries; end: %d dead letters, %d expired, %d lost to raw pullers at a disconnect (allowed), %d frames to leaving envelope pullers after their message went to another (allowed)",
		c.ops, c.pushes, c.deliveries, c.rawDeliveries, c.acks, c.nacks, c.refusedSettles, c.takeovers, c.kills, c.restarts, c.expiries, c.deadLetters, c.expired, c.rawLost, c.lateFrames) + crash
}

// modelMsg is one pushed message as the model sees it.
type modelMsg struct {
	// In a cluster: raw-pulled from a broker killed since, it may come
	// once more (rawAgain), and did (rawRepeated).
	rawAgain, rawRepeated bool

	n         int    // the number in its payload
	seq       uint64 // the broker's id, from the push's answer
	confirmed bool
	pushedAt  time.Time

	acked     int
	ackedAt   time.Time // when the successful ack was sent
	rawRecv   int
	holder    *modelPuller // the live envelope puller holding it, if any
	heldBy    *modelPuller // the last envelope puller it was delivered to
	heldAt    time.Time
	notBefore time.Time // a successful nack's delay ends
	lastTry   int       // the last attempt seen, in life lastLife
	lastLife  int
	received  []delivery // every delivery, to check ones after an ack or a nack

	expectDead   bool         // nacked or left at max_attempts: it must be a dead letter
	expired      bool         // its queue expired: gone for good
	maybeExpired bool         // its queue may have expired
	rawAtRisk    *modelPuller // the last raw puller that left while it waited: it may be lost
	unseenTry    bool         // an envelope puller left while it waited: an attempt may be unseen
	settleLost   bool         // a settle whose answer was lost with its connection

	settledSync int  // q.syncs when it was last settled: synced once q.syncs passes it
	mayReturn   bool // a crash may have undone its settlement

	// The broker's ack timeout runs from its dispatch, which the model
	// does not see: it came after availableAt (pushed, nacked, left by a
	// puller, restarted) and after its puller dialed. dispatchedAfter is
	// that bound for the current holder: a large frame on a busy machine
	// may arrive long after its dispatch.
	availableAt     time.Time
	dispatchedAfter time.Time
	nackTry         int // the attempt its puller held when it nacked
}

func (m *modelMsg) resolved() bool {
	return m.acked > 0 || m.rawRecv > 0 || m.expectDead || m.expired
}

type delivery struct {
	at time.Time
	to *modelPuller
}

// modelPuller is one puller connection as the model sees it.
type modelPuller struct {
	id      int
	node    int // the broker it is connected to
	env     bool
	closed  bool
	evicted bool        // closed by another's takeover
	dialed  time.Time   // when it started to connect
	held    []*modelMsg // envelope: in the order received
}

func newQueueModel(maxAttempts int, ackTimeout time.Duration) *queueModel {
	return &queueModel{maxAttempts: maxAttempts, ackTimeout: ackTimeout,
		msgs: map[int]*modelMsg{}, bySeq: map[uint64]*modelMsg{}, now: time.Now}
}

// violate records a broken promise; q.mu must be held.
func (q *queueModel) violate(format string, args ...any) {
	v := fmt.Sprintf(format, args...)
	q.violations = append(q.violations, v)
	q.tracef("VIOLATION %s", v)
	q.lastBad = len(q.trace)
}

// tracef records an event; q.mu must be held.
func (q *queueModel) tracef(format string, args ...any) {
	q.trace = append(q.trace, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// traceAround returns the trace up to a few events after the last
// violation, its last lines.
func (q *queueModel) traceAround(lines int) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	end := len(q.trace)
	if q.lastBad > 0 {
		end = min(end, q.lastBad+10)
	}
	return strings.Join(q.trace[max(0, end-lines):end], "\n")
}

// pushStarted records a push about to be sent.
func (q *queueModel) pushStarted(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs[n] = &modelMsg{n: n, pushedAt: q.now(), availableAt: q.now(), lastLife: -1}
}

// pushConfirmed records the broker's answer to a push.
func (q *queueModel) pushConfirmed(n int, seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs[n]
	m.confirmed, m.seq = true, seq
	if other := q.bySeq[seq]; other != nil {
		q.violate("push m%d confirmed with id %d, which m%d already has", n, seq, other.n)
	}
	q.bySeq[seq] = m
	q.counts.pushes++
	q.syncs++
}

// delivered checks one delivery to p: raw when attempt is 0.
func (q *queueModel) delivered(p *modelPuller, n int, seq uint64, attempt int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.counts.deliveries++
	m := q.msgs[n]
	if m == nil {
		q.violate("puller %d got m%d, which was never pushed", p.id, n)
		return
	}
	who := fmt.Sprintf("puller %d (%s) got m%d", p.id, map[bool]string{true: "envelope", false: "raw"}[p.env], n)
	q.tracef("puller %d got m%d attempt %d", p.id, n, attempt)
	if p.env && m.confirmed && seq != m.seq {
		q.violate("%s with id %d, but its push was answered with id %d", who, seq, m.seq)
	}
	if m.mayReturn && m.rawRecv == 0 && (m.acked > 0 || m.expectDead || m.expired) {
		q.undo(m, who)
	}
	if p.env && p.closed && (m.acked > 0 || m.expectDead || m.holder != nil && m.holder != p || m.rawRecv > 0) {
		// A frame to an envelope puller that is leaving or was taken
		// over, read after its message went to another: it can no longer
		// settle it, and at-least-once allows it. Counted. Even when the
		// other is a raw puller: the order in which two sockets are read
		// does not show the order in which the broker wrote them, and a
		// frame written before the handover may be read after it.
		q.counts.lateFrames++
		m.received = append(m.received, delivery{now, p})
		return
	}
	switch {
	case m.acked > 0:
		q.violate("%s again after it was acked (at-least-once must stop at the ack)", who)
	case m.rawRecv > 0 && m.rawAgain:
		// docs/clustering.md, "Limits of the cluster": a raw puller's
		// message is acknowledged to JetStream once written; a broker
		// killed between the two has it delivered again.
		m.rawAgain, m.rawRepeated = false, true
		q.tracef("m%d again: the broker that wrote it to a raw puller was killed since", m.n)
	case m.rawRecv > 0:
		q.violate("%s again after a raw puller had it (raw is at most once)", who)
	case m.expired:
		q.violate("%s after its queue expired", who)
	case m.expectDead:
		q.violate("%s after it became a dead letter (max_attempts %d)", who, q.maxAttempts)
	}
	if h := m.holder; h != nil && h != p && !h.closed && now.Sub(m.heldAt) < q.ackTimeout/2 && now.Sub(m.dispatchedAfter) < q.ackTimeout {
		q.violate("%s while puller %d holds it (received %s ago, ack timeout %s)", who, h.id, now.Sub(m.heldAt).Round(time.Millisecond), q.ackTimeout)
	}
	if !m.notBefore.IsZero() && now.Before(m.notBefore) {
		q.violate("%s %s before its nack delay ended", who, m.notBefore.Sub(now).Round(time.Millisecond))
	}
	m.notBefore = time.Time{}
	m.received = append(m.received, delivery{now, p})
	if !p.env {
		q.counts.rawDeliveries++
		m.rawRecv++
		q.release(m)
		return
	}
	if attempt < 1 || attempt > q.maxAttempts {
		q.violate("%s at attempt %d (max_attempts %d)", who, attempt, q.maxAttempts)
	}
	if m.lastLife == q.life && attempt <= m.lastTry && !p.closed {
		q.violate("%s at attempt %d after attempt %d", who, attempt, m.lastTry)
	}
	m.lastTry, m.lastLife = attempt, q.life
	q.release(m)
	if p.closed {
		return // written before its eviction; the puller can no longer settle it
	}
	m.holder, m.heldBy, m.heldAt = p, p, now
	m.dispatchedAfter = m.availableAt
	if p.dialed.After(m.dispatchedAfter) {
		m.dispatchedAfter = p.dialed
	}
	p.held = append(p.held, m)
}

// release takes m from its holder's hands in the model.
func (q *queueModel) release(m *modelMsg) {
	h := m.holder
	if h == nil {
		return
	}
	for i, x := range h.held {
		if x == m {
			h.held = append(h.held[:i], h.held[i+1:]...)
			break
		}
	}
	m.holder = nil
}

// heldBy returns up to k of p's held messages, oldest first, to settle.
func (q *queueModel) heldBy(p *modelPuller, k int) []*modelMsg {
	q.mu.Lock()
	defer q.mu.Unlock()
	k = min(k, len(p.held))
	return append([]*modelMsg(nil), p.held[:k]...)
}

// nackSending releases m from p before the nack is sent: from then on the
// broker may hand it to another puller.
func (q *queueModel) nackSending(p *modelPuller, m *modelMsg) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m.nackTry = 0
	if m.holder == p {
		m.nackTry = m.lastTry
		q.release(m)
	}
	m.availableAt = q.now()
}

// settleResult records the broker's verdict on one ack or nack p sent at
// sent: refused is true when it answered unknown_id; lost when the
// connection ended before the verdict.
func (q *queueModel) settleResult(p *modelPuller, m *modelMsg, ack bool, delay time.Duration, sent time.Time, refused, lost bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	verb := map[bool]string{true: "ack", false: "nack"}[ack]
	q.tracef("puller %d %s m%d: refused %v, answer lost %v", p.id, verb, m.n, refused, lost)
	if lost {
		m.settleLost = true
		q.release(m)
		return
	}
	if refused {
		q.counts.refusedSettles++
		// Only a hold that began before the settle was sent: a later
		// delivery (a redelivery after the ack timeout, on a busy machine)
		// is not what it named.
		if (m.holder == p || !ack && m.holder == nil && m.heldBy == p) && m.heldAt.Before(sent) &&
			sent.Sub(m.heldAt) < q.ackTimeout/2 && sent.Sub(m.dispatchedAfter) < q.ackTimeout {
			q.violate("puller %d's %s of m%d refused as unknown_id %s after it was received, well within the ack timeout %s",
				p.id, verb, m.n, sent.Sub(m.heldAt).Round(time.Millisecond), q.ackTimeout)
		}
		if m.holder == p {
			q.release(m)
		}
		return
	}
	if ack && m.holder != nil && m.holder != p {
		q.violate("puller %d's %s of m%d accepted, but it was redelivered to puller %d since", p.id, verb, m.n, m.holder.id)
	}
	if ack || m.holder == p {
		// A nack accepted while another puller holds m: the broker
		// handed it on at once (no delay), before the answer came.
		q.release(m)
	}
	m.settledSync, m.mayReturn = q.syncs, false
	if ack {
		q.counts.acks++
		m.acked++
		if m.acked > 1 {
			q.violate("m%d acked %d times", m.n, m.acked)
		}
		if m.rawRecv > 0 && !m.rawRepeated {
			q.violate("m%d acked by puller %d after a raw puller had it", m.n, p.id)
		}
		m.ackedAt = sent
		for _, d := range m.received {
			// A redelivery to p itself before the ack arrived is what
			// the ack settled: the id is the same.
			if d.at.After(sent) && d.to != p {
				q.violate("m%d delivered again to puller %d %s after puller %d's ack, which the broker accepted", m.n, d.to.id, d.at.Sub(sent).Round(time.Millisecond), p.id)
			}
		}
		return
	}
	q.counts.nacks++
	// The nack settled the attempt p held, or a later one the ack timeout
	// redelivered to p: dead for sure only when the first is the last.
	if m.nackTry >= q.maxAttempts {
		m.expectDead = true
		return
	}
	if delay > 0 {
		m.notBefore = sent.Add(delay)
		first := true
		for i, d := range m.received {
			if !d.at.After(sent) || !d.at.Before(m.notBefore) {
				continue
			}
			// The ack timeout may redeliver to p while its nack is on the
			// way: the nack then settles that delivery, which has the
			// same id. Only the first, to p, an ack timeout after the last.
			if first && d.to == p && i > 0 && d.at.Sub(m.received[i-1].at) >= q.ackTimeout/2 {
				first = false
				q.tracef("m%d: puller %d's nack crossed its redelivery after the ack timeout, and settled it", m.n, p.id)
				continue
			}
			first = false
			q.violate("m%d delivered again %s after puller %d's nack with delay %s", m.n, d.at.Sub(sent).Round(time.Millisecond), p.id, delay)
		}
	}
}

// pullerClosed records that p's connection ended. What it held goes back;
// raw: what waited may have been written to it unread.
func (q *queueModel) pullerClosed(p *modelPuller) { q.pullerLeft(p, false) }

// pullerLeft is pullerClosed; quiet says the broker had nothing in
// flight and nothing ready when p left: only a delayed message may have
// become ready and been written to it.
func (q *queueModel) pullerLeft(p *modelPuller, quiet bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	now := q.now()
	q.tracef("puller %d closed", p.id)
	for _, m := range p.held {
		m.holder = nil
		m.availableAt = now
		if m.lastLife == q.life && m.lastTry >= q.maxAttempts {
			m.expectDead = true
			m.settledSync, m.mayReturn = q.syncs, false
		}
	}
	p.held = nil
	for _, m := range q.msgs {
		// A settlement a crash may have undone leaves the message waiting
		// again, as any other (see crashed).
		if m.resolved() && !m.mayReturn || m.holder != nil && now.Sub(m.heldAt) < q.ackTimeout/2 || quiet && m.notBefore.IsZero() {
			continue
		}
		if p.env {
			m.unseenTry = true
		} else {
			m.rawAtRisk = p
		}
	}
}

// brokerKilled: in a cluster, what the killed broker wrote to a raw
// puller and had not yet acknowledged to JetStream comes again, once (see
// delivered); what it had fetched for its pullers spent an attempt no
// puller saw (docs/clustering.md, "Push/pull").
func (q *queueModel) brokerKilled(node int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if !m.resolved() {
			m.unseenTry = true
		}
		if n := len(m.received); m.rawRecv > 0 && n > 0 && !m.received[n-1].to.env && m.received[n-1].to.node == node {
			m.rawAgain = true
		}
	}
}

// restarted starts a new broker life.
func (q *queueModel) restarted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.life++
	q.counts.restarts++
	for _, m := range q.msgs {
		m.availableAt = q.now()
	}
}

// queueExpired: every message not yet settled went with the queue (sure),
// or may have (when the expiry's moment is unsure).
func (q *queueModel) queueExpired(sure bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if sure {
		q.counts.expiries++
	}
	for _, m := range q.msgs {
		if m.acked > 0 || m.rawRecv > 0 || m.expired {
			continue
		}
		if sure {
			m.expired = true
			// The queue leaves GET /api/queues a moment before its records
			// are deleted: the push right after may come first.
			m.settledSync, m.mayReturn = q.syncs+1, false
		} else {
			m.maybeExpired = true
		}
	}
}

// queueExpiredBefore: the queue may have expired before m n was pushed
// to it (a new queue then has m n).
func (q *queueModel) queueExpiredBefore(n int) {
	q.mu.Lock()
	m := q.msgs[n]
	q.mu.Unlock()
	q.queueExpired(false)
	q.mu.Lock()
	defer q.mu.Unlock()
	m.maybeExpired = false
}

// delayedCount counts the messages nacked with a delay not yet over:
// they wait in the queue, but no puller can have them.
func (q *queueModel) delayedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, now := 0, q.now()
	for _, m := range q.msgs {
		if !m.notBefore.IsZero() && m.notBefore.After(now) && !m.resolved() && !m.expired {
			n++
		}
	}
	return n
}

// heldCount counts the messages live envelope pullers hold.
func (q *queueModel) heldCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.msgs {
		if m.holder != nil && !m.holder.closed {
			n++
		}
	}
	return n
}

// unresolved counts the confirmed messages a final drain should still
// bring in.
func (q *queueModel) unresolved() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.msgs {
		if m.confirmed && !m.resolved() && !m.maybeExpired {
			n++
		}
	}
	return n
}

// deadLetter is one entry of GET /api/queues/dead.
type deadLetterEntry struct {
	ID       uint64 `json:"id"`
	Attempts int    `json:"attempts"`
}

// finish checks the end state, after a drain, against the dead letters.
func (q *queueModel) finish(dead []deadLetterEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	inDLQ := map[*modelMsg]bool{}
	for _, d := range dead {
		m := q.bySeq[d.ID]
		if m == nil {
			q.violate("dead letter %d is no confirmed push", d.ID)
			continue
		}
		inDLQ[m] = true
		q.counts.deadLetters++
		if m.mayReturn && (m.acked > 0 || m.expired) {
			q.undo(m, fmt.Sprintf("dead letter m%d", m.n))
		}
		switch {
		case m.acked > 0:
			q.violate("m%d is a dead letter but was acked", m.n)
		case m.rawRecv > 0 && !m.rawRepeated:
			q.violate("m%d is a dead letter but a raw puller had it", m.n)
		case m.expired:
			q.violate("m%d is a dead letter of a queue that expired", m.n)
		}
		if d.Attempts != q.maxAttempts {
			q.violate("m%d is a dead letter after %d attempts, max_attempts is %d", m.n, d.Attempts, q.maxAttempts)
		}
		if m.lastTry < q.maxAttempts && !m.unseenTry && !m.settleLost {
			q.violate("m%d is a dead letter but was seen at attempt %d of %d only", m.n, m.lastTry, q.maxAttempts)
		}
	}
	var ns []int
	for n := range q.msgs {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		m := q.msgs[n]
		if !m.confirmed {
			continue
		}
		switch {
		case m.expired || m.maybeExpired && m.acked == 0 && m.rawRecv == 0 && !inDLQ[m]:
			q.counts.expired++
		case m.expectDead && !inDLQ[m] && m.acked == 0 && m.mayReturn && m.rawAtRisk != nil:
			// A crash undid its dead-letter move: it waited in its queue
			// again, and a raw puller that left since may have had it.
			q.counts.undone++
			q.counts.rawLost++
			q.tracef("m%d is no dead letter: a crash undid its dead-letter move, not synced, and a raw puller may have had it when it left", m.n)
		case m.expectDead && !inDLQ[m] && m.acked == 0:
			if !m.settleLost {
				q.violate("m%d left at max_attempts but is no dead letter", m.n)
			}
		case m.acked == 0 && m.rawRecv == 0 && !inDLQ[m] && !m.expectDead:
			if m.rawAtRisk != nil || m.settleLost {
				q.counts.rawLost++
				q.tracef("m%d never came back: a raw puller may have had it when it left (%v), or the answer to a settle was lost (%v)", m.n, m.rawAtRisk != nil, m.settleLost)
			} else {
				q.violate("m%d (id %d) was confirmed and is lost: never acked, not a dead letter, its queue did not expire", m.n, m.seq)
			}
		}
	}
}

// violationKind is a violation without its numbers: the promise broken.
var violationNumbers = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ms|µs|s)?`)

func violationKind(v string) string { return violationNumbers.ReplaceAllString(v, "#") }

// firstKind returns the kind of the first violation, "" when none.
func (q *queueModel) firstKind() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.violations) == 0 {
		return ""
	}
	return violationKind(q.violations[0])
}

// broke reports whether a violation of kind happened.
func (q *queueModel) broke(kind string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, v := range q.violations {
		if violationKind(v) == kind {
			return true
		}
	}
	return false
}

// report returns the violations, one a line.
func (q *queueModel) report() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return strings.Join(q.violations, "\n"), len(q.violations) > 0
}
