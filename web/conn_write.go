package web

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/broker"
)

// outFrame is one frame waiting to be written.
type outFrame struct {
	typ      websocket.MessageType
	data     []byte
	delivery *broker.Delivery // a raw puller's: settled once written
	// uncounted frames (a replay backlog, already held in the broker's
	// history) do not count against the outgoing queue's limit.
	uncounted bool
}

// Deliver queues a subscribed or bus message (broker.Receiver).
func (c *conn) Deliver(m *broker.Message) {
	c.enqueue(c.messageFrame(m, false))
}

func (c *conn) messageFrame(m *broker.Message, uncounted bool) outFrame {
	if c.opts.envelope {
		return outFrame{typ: websocket.MessageText, data: m.Envelope(), uncounted: uncounted}
	}
	return outFrame{typ: frameType(m), data: m.Payload, uncounted: uncounted}
}

// Offer queues a pulled message (broker.Puller). A raw puller's delivery
// is settled once written; an envelope puller settles it with an ack.
func (c *conn) Offer(d *broker.Delivery) {
	if c.opts.envelope {
		c.enqueue(outFrame{typ: websocket.MessageText, data: d.Envelope()})
		return
	}
	c.enqueue(outFrame{typ: frameType(d.Message), data: d.Message.Payload, delivery: d})
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
	c.startWriter()
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
	if !f.uncounted && c.outBytes > 0 && c.outBytes+len(f.data) > c.s.opts.OutgoingQueue {
		c.out, c.outBytes = nil, 0
		c.mu.Unlock()
		c.s.slowConsumers.Add(1)
		c.s.log.Info("slow consumer closed", "remote", c.remote, "pattern", c.pattern.String(), "topic", c.topic)
		c.closeWith(websocket.StatusPolicyViolation, "slow consumer")
		return
	}
	c.out = append(c.out, f)
	if !f.uncounted {
		c.outBytes += len(f.data)
	}
	c.startWriter()
	c.mu.Unlock()
}

// startWriter starts the writer if frames wait, the connection is up and
// no writer runs; c.mu is held.
func (c *conn) startWriter() {
	if !c.writing && c.ws != nil && len(c.out) > 0 {
		c.writing = true
		c.bg.Add(1)
		go c.writeLoop()
	}
}

// maxBatch bounds the frames one batch takes, so a long replay is written
// in slices and its memory released as it goes.
const maxBatch = 256

// writeLoop writes queued frames until the queue is empty, each batch
// with one system call.
func (c *conn) writeLoop() {
	defer c.bg.Done()
	ctx := context.Background() // the corkConn's deadline bounds each write
	for {
		c.mu.Lock()
		if len(c.out) == 0 || c.dead {
			c.writing = false
			c.mu.Unlock()
			return
		}
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
		c.mu.Unlock()

		var err error
		counted := 0
		c.cork.Cork()
		for _, f := range batch {
			if !f.uncounted {
				counted += len(f.data)
			}
			if err = c.ws.Write(ctx, f.typ, f.data); err != nil {
				break
			}
		}
		if uerr := c.cork.Uncork(); err == nil {
			err = uerr
		}
		if err == nil {
			for _, f := range batch {
				if f.delivery != nil {
					f.delivery.Done()
				}
			}
		}
		clear(batch)

		c.mu.Lock()
		c.outBytes = max(c.outBytes-counted, 0) // the queue may have been dropped meanwhile
		c.spare = batch[:0]
		if err != nil {
			c.writing = false
			c.mu.Unlock()
			c.ws.CloseNow()
			return
		}
		c.mu.Unlock()
	}
}
