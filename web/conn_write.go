package web

import (
	"encoding/json"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
)

// outFrame is one frame waiting to be written.
type outFrame struct {
	typ  websocket.MessageType
	data []byte
	// delivery is a pulled message's: claimed before it is written, and a
	// raw puller's settled once written (an envelope puller's by its ack).
	delivery *broker.Delivery
	acked    bool
	// uncounted frames do not count against the outgoing queue's limit:
	// a replay backlog, already held in the broker's history, and pulled
	// messages, which the broker bounds itself (PullOptions.MaxBytes).
	uncounted bool
	replay    bool // from the history: its age is not latency
	// accepted is when the broker accepted the message (Unix ns), for the
	// publish-to-write metric; 0 for frames of our own (errors, confirms).
	accepted int64
}

// Deliver queues a subscribed or bus message (broker.Receiver).
func (c *conn) Deliver(m *broker.Message) {
	c.enqueue(c.messageFrame(m, false))
}

func (c *conn) messageFrame(m *broker.Message, replay bool) outFrame {
	if c.opts.envelope {
		return outFrame{typ: websocket.MessageText, data: m.Envelope(), uncounted: replay, replay: replay, accepted: m.Time.UnixNano()}
	}
	return outFrame{typ: frameType(m), data: m.Payload, uncounted: replay, replay: replay, accepted: m.Time.UnixNano()}
}

// Offer queues a pulled message (broker.Puller). A raw puller's delivery
// is settled once written; an envelope puller settles it with an ack.
// What the broker offers never makes a slow consumer: it offers no more
// than the outgoing queue's limit (at least one message), and a puller
// that does not read is cut off by the write timeout.
func (c *conn) Offer(d *broker.Delivery) {
	accepted := d.Message.Time.UnixNano()
	if c.opts.envelope {
		c.enqueue(outFrame{typ: websocket.MessageText, data: d.Envelope(), delivery: d, acked: true, accepted: accepted, uncounted: true})
		return
	}
	c.enqueue(outFrame{typ: frameType(d.Message), data: d.Message.Payload, delivery: d, accepted: accepted, uncounted: true})
}

func (c *conn) sendError(e *apiError) { c.sendText(e.JSON()) }

func (c *conn) sendText(b []byte) {
	c.enqueue(outFrame{typ: websocket.MessageText, data: b})
}

// sendOK confirms an accepted message to an envelope-mode publisher.
func (c *conn) sendOK(seq uint64) {
	b := make([]byte, 0, 32)
	b = append(b, `{"ok":`...)
	b = strconv.AppendUint(b, seq, 10)
	c.sendText(append(b, '}'))
}

// prependBacklog puts a replay, and in envelope mode the gap before it, at
// the head of the outgoing queue: before any live message that arrived
// since the subscription was attached.
func (c *conn) prependBacklog(backlog []*broker.Message, gap *broker.Gap) {
	frames := make([]outFrame, 0, len(backlog)+1)
	if gap != nil && c.opts.envelope {
		g, _ := json.Marshal(struct {
			Gap *broker.Gap `json:"gap"`
		}{gap})
		frames = append(frames, outFrame{typ: websocket.MessageText, data: g, uncounted: true})
	}
	for _, m := range backlog {
		frames = append(frames, c.messageFrame(m, true))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(frames, c.out...)
	c.kick()
}

func frameType(m *broker.Message) websocket.MessageType {
	if m.Binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// enqueue adds f to the outgoing queue without blocking. A connection
// whose queue would pass its limit is a slow consumer: it is closed, and
// what it held is dropped (a puller's deliveries go back to the queue).
func (c *conn) enqueue(f outFrame) {
	c.mu.Lock()
	if c.closing || c.dead {
		c.mu.Unlock()
		return
	}
	if !f.uncounted && c.outBytes > 0 && c.outBytes+frameCost(f) > c.s.opts.OutgoingQueue {
		c.out, c.outBytes = nil, 0
		c.mu.Unlock()
		c.s.slowConsumers.Add(1)
		c.s.log.Info("slow consumer closed", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic)
		c.closeSlowConsumer()
		return
	}
	c.out = append(c.out, f)
	if !f.uncounted {
		c.outBytes += frameCost(f)
	}
	if f.accepted != 0 && !f.replay {
		if c.lastAccepted != 0 {
			c.lastGap = f.accepted - c.lastAccepted
		}
		c.lastAccepted = f.accepted
	}
	c.kick()
	c.mu.Unlock()
}

// frameOverhead is what a queued frame costs beyond its bytes (the
// outFrame, its header when written), so that a flood of empty frames
// fills the outgoing queue too.
const frameOverhead = 64

// frameCost is what f counts against the outgoing queue's limit.
func frameCost(f outFrame) int { return len(f.data) + frameOverhead }

// kick gets waiting frames written: it puts the connection on its shard's
// ready list unless it is there already, or a slow writer has it, or the
// handshake is not done. A connection held in its coalescing window goes
// to the ready list as soon as a full batch has gathered; c.mu is held.
func (c *conn) kick() {
	if c.wire == nil || c.slow || len(c.out) == 0 {
		return
	}
	if c.scheduled {
		if c.heldUntil != 0 && c.batchFull() {
			c.heldUntil = 0 // its entry in the window list is now stale
			c.shard.schedule(c)
		}
		return
	}
	c.scheduled = true
	c.shard.schedule(c)
}

// A subscriber held in its coalescing window is written as soon as this
// much waits: a system call's cost is then spread over enough messages,
// and waiting longer would only add latency.
const (
	coalesceFrames = 4
	coalesceBytes  = 4096
)

// batchFull tells whether enough waits to end a coalescing window early;
// c.mu is held.
func (c *conn) batchFull() bool {
	return len(c.out) >= coalesceFrames || c.outBytes >= coalesceBytes
}

// maxBatch bounds the frames one write takes, so a long replay is written
// in slices and its memory released as it goes.
const maxBatch = 256

// take removes the next batch from the queue; c.mu is held.
func (c *conn) take() []outFrame {
	var batch []outFrame
	if len(c.out) > maxBatch {
		batch = append(c.spare[:0], c.out[:maxBatch]...)
		clear(c.out[:maxBatch])
		c.out = c.out[maxBatch:]
	} else {
		batch = c.out
		c.out = c.spare[:0]
	}
	c.spare = nil
	return batch
}

// flush writes the waiting frames from shard s without blocking. When the
// socket is full, the rest goes to a writer goroutine of its own.
//
// With a coalescing window (Options.WriteCoalesce), a subscriber that
// wrote less than a window ago is held until the window ends, or until a
// full batch has gathered (batchFull), whichever comes first: what arrives
// meanwhile shares the write. Only subscribers are held: publishers
// (confirms), pullers (a job after each ack) and buses talk back and forth,
// where a held write would slow every round trip. Nor is a subscriber
// whose messages come further apart than what is left of its window (the
// gap between its last two, by the broker's clock): the next would not
// arrive in time to share the write, and holding would cost a wake-up of
// the shard for nothing. windowEnd is zero when c comes off the ready
// list, else the end of the window it was held for.
func (c *conn) flush(s *shard, windowEnd mono) {
	c.mu.Lock()
	if windowEnd != 0 {
		if c.heldUntil != windowEnd { // released early by kick: the ready list has it
			c.mu.Unlock()
			return
		}
		c.heldUntil = 0
	} else if s.coalesce > 0 && c.pattern == patternSub && !c.closing && !c.dead && !c.slow && len(c.out) > 0 && !c.batchFull() {
		if due, now := c.lastWrite+mono(s.coalesce), monoNow(); c.lastWrite != 0 && now < due && c.lastGap < int64(due-now) {
			c.heldUntil = due // still scheduled: frames arriving now join this write
			c.mu.Unlock()
			s.delay(c, due)
			return
		}
	}
	c.scheduled = false
	if c.dead || c.slow || len(c.out) == 0 {
		c.closeIfDrained()
		c.mu.Unlock()
		return
	}
	batch := c.take()
	c.bg.Add(1) // teardown waits for this write before giving deliveries back
	c.mu.Unlock()
	defer c.bg.Done()
	batch = claim(batch)
	if mustTake(batch) { // waits for the disk: not on the shard
		c.goSlow(batch, 0)
		return
	}

	if !c.wire.mu.TryLock() { // the library is writing a control frame
		c.goSlow(batch, 0)
		return
	}
	if c.closeSent() {
		// Nothing may follow the close frame; what the batch claimed goes
		// back to the queue.
		c.wire.mu.Unlock()
		c.done(batch, 0, nil)
		return
	}
	bufs := s.frames(batch)
	n, blocked, err := c.wire.tryWritev(s.call, bufs)
	midFrame := blocked && err == nil && n > 0
	if !midFrame {
		c.wire.mu.Unlock()
	}
	clear(bufs)
	s.bufs = bufs[:0]
	switch {
	case err != nil:
		c.done(batch, n, err)
	case blocked:
		if hook := frameCutShort.Load(); hook != nil && n > 0 {
			(*hook)(c)
		}
		c.goSlow(batch, n)
	default:
		now := time.Now()
		counted := c.account(batch, allWritten, nil, now)
		c.mu.Lock()
		c.release(batch, counted)
		if s.coalesce > 0 {
			c.lastWrite = monoOf(now)
		}
		c.kick() // more may have come meanwhile
		c.closeIfDrained()
		c.mu.Unlock()
	}
}

// frameCutShort, when set by a test, runs after a non-blocking write went
// out in part, before the rest is handed to a writer goroutine.
var frameCutShort atomic.Pointer[func(c *conn)]

// goSlow hands batch, of which the first written bytes went out already,
// to a writer goroutine that may block on the socket. With written > 0
// the caller holds c.wire.mu and hands it over: the frame cut short must
// be finished before anything else, a control frame the library writes
// (a pong, a close) included, goes to the socket.
func (c *conn) goSlow(batch []outFrame, written int) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		if written > 0 {
			c.wire.mu.Unlock()
		}
		c.done(batch, written, nil) // what it claimed goes back
		return
	}
	c.slow = true
	c.bg.Add(1)
	c.mu.Unlock()
	go c.writeSlow(batch, written)
}

// writeSlow writes, blocking up to the write timeout each time, until the
// queue is empty; then the shard takes over again.
func (c *conn) writeSlow(batch []outFrame, written int) {
	defer c.bg.Done()
	var headers []byte
	held := written > 0 // c.wire.mu, handed over by flush (see goSlow)
	for {
		var err error
		if written == 0 && mustTake(batch) {
			if err = take(batch); err != nil {
				c.s.log.Error("pull: not written", "remote", c.remote, "topic", c.topic, "err", err)
			}
		}
		if err == nil {
			if !held {
				c.wire.mu.Lock()
			}
			// Held since a frame was cut short, no close frame can have
			// gone, and the frame must be finished.
			if held || !c.closeSent() {
				bufs := skipBytes(appendFrames(&headers, nil, batch), written)
				var n int
				n, err = c.wire.writeAll(bufs)
				written += n
			}
			c.wire.mu.Unlock()
			held = false
		}
		c.done(batch, written, err)
		c.mu.Lock()
		if err != nil || c.dead || len(c.out) == 0 {
			c.slow = false
			if err == nil {
				c.closeIfDrained()
			}
			c.mu.Unlock()
			return
		}
		batch, written = c.take(), 0
		c.mu.Unlock()
		batch = claim(batch)
	}
}

// claim keeps of batch what this connection may still write: a pulled
// message that was handed to another puller meanwhile (this one was taken
// over) is dropped, or it would reach both.
func claim(batch []outFrame) []outFrame {
	kept := batch[:0]
	for _, f := range batch {
		if f.delivery != nil && !f.delivery.Claim() {
			continue
		}
		kept = append(kept, f)
	}
	clear(batch[len(kept):])
	return kept
}

// mustTake tells whether batch holds a raw puller's delivery from a
// durable queue, which leaves the store, synced, before it is written
// (broker.Take): then a crash cannot deliver it again.
func mustTake(batch []outFrame) bool {
	for _, f := range batch {
		if f.delivery != nil && !f.acked && f.delivery.NeedsTake() {
			return true
		}
	}
	return false
}

// take removes batch's raw deliveries of durable queues from the store.
func take(batch []outFrame) error {
	var ds []*broker.Delivery
	for _, f := range batch {
		if f.delivery != nil && !f.acked && f.delivery.NeedsTake() {
			ds = append(ds, f.delivery)
		}
	}
	return broker.Take(ds)
}

// allWritten tells done that the whole batch was written.
const allWritten = math.MaxInt

// done finishes a batch whose first written bytes went to the socket. A
// raw puller's delivery whose frame went whole is settled; one whose frame
// did not (the write failed, or a close went first) goes back to the
// queue: at most once, and nothing the client got is delivered again. A
// failed write closes the connection. Either way the batch no longer
// counts against the queue.
func (c *conn) done(batch []outFrame, written int, err error) {
	counted := c.account(batch, written, err, time.Now())
	c.mu.Lock()
	c.release(batch, counted)
	c.mu.Unlock()
}

// account is done's work outside c.mu, now being when the write ended: it
// returns what the batch counted against the queue's limit.
func (c *conn) account(batch []outFrame, written int, err error, now time.Time) (counted int) {
	if err != nil {
		c.ws.CloseNow()
	}
	offset, whole := 0, 0
	var oldest int64
	var messages uint64
	for _, f := range batch {
		if !f.uncounted {
			counted += frameCost(f)
		}
		offset += frameLen(f)
		if f.delivery != nil && f.acked {
			f.delivery.Sent() // written or not, it waits for its ack
		}
		if offset > written {
			if f.delivery != nil && !f.acked {
				f.delivery.Release()
			}
			continue
		}
		whole++
		if f.delivery != nil && !f.acked {
			f.delivery.Done()
		}
		if f.accepted != 0 {
			if oldest == 0 && !f.replay {
				oldest = f.accepted
			}
			messages++
		}
	}
	if whole > 0 {
		c.idle.noteAt(now)
	}
	if messages > 0 {
		c.msgsOut.Add(messages)
		c.s.metrics.ObserveWrite(oldest, now)
	}
	clear(batch)
	return counted
}

// release takes an accounted batch off the queue's count and keeps its slice
// for the next; c.mu is held.
func (c *conn) release(batch []outFrame, counted int) {
	c.outBytes = max(c.outBytes-counted, 0) // the queue may have been dropped meanwhile
	if c.spare == nil {
		c.spare = batch[:0]
	}
}
