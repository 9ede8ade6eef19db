package web

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writers are the goroutines that write connections' frames: one shard a
// core. A connection with frames waiting is put on its shard's ready list;
// the shard writes each ready connection's frames with one non-blocking
// writev, batching whatever accumulated meanwhile. No goroutine is started
// per message and none sits idle per connection; a connection whose socket
// is full is handed to a goroutine of its own until it drains.
type writers struct {
	shards []*shard
	next   atomic.Uint32
	wg     sync.WaitGroup
}

type shard struct {
	coalesce time.Duration // Options.WriteCoalesce

	mu    sync.Mutex
	ready []*conn
	// idle: the shard found its ready list empty and waits (or is about
	// to) for wake; under mu. Only then does a new entry signal it.
	idle bool
	wake chan struct{} // capacity 1
	quit chan struct{}

	// Connections whose write waits for the coalescing window; used by
	// the shard's goroutine only.
	delayed []delayedConn
	timer   *time.Timer

	// Scratch, used by the shard's goroutine only.
	spare   []*conn
	headers []byte
	bufs    [][]byte
	call    *writevCall
}

type delayedConn struct {
	c   *conn
	due mono
}

// mono is a reading of the monotonic clock: nanoseconds since clockBase,
// which the coalescing windows use. Reading it is one clock call where
// time.Now makes two, and it takes a word where a time.Time takes three.
type mono int64

var clockBase = time.Now()

func monoNow() mono { return mono(time.Since(clockBase)) }

// monoOf is t, read with time.Now, on the monotonic clock.
func monoOf(t time.Time) mono { return mono(t.Sub(clockBase)) }

func startWriters(coalesce time.Duration) *writers {
	w := &writers{shards: make([]*shard, runtime.GOMAXPROCS(0))}
	for i := range w.shards {
		s := &shard{coalesce: coalesce, wake: make(chan struct{}, 1), quit: make(chan struct{}), call: newWritevCall(), idle: true}
		w.shards[i] = s
		w.wg.Go(s.run)
	}
	return w
}

// pick spreads connections over the shards.
func (w *writers) pick() *shard {
	return w.shards[int(w.next.Add(1))%len(w.shards)]
}

// stop ends the shards; connections must be gone.
func (w *writers) stop() {
	for _, s := range w.shards {
		close(s.quit)
	}
	w.wg.Wait()
}

// schedule puts c on the ready list.
func (s *shard) schedule(c *conn) {
	s.mu.Lock()
	s.ready = append(s.ready, c)
	idle := s.idle
	s.idle = false
	s.mu.Unlock()
	// A shard at work looks at its list again before it waits: a message
	// to a hundred subscribers signals it at most once.
	if idle {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *shard) run() {
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	defer s.timer.Stop()
	for {
		var due <-chan time.Time
		if len(s.delayed) > 0 {
			s.timer.Reset(time.Duration(s.delayed[0].due - monoNow()))
			due = s.timer.C
		}
		select {
		case <-s.wake:
		case <-due:
		case <-s.quit:
			return
		}
		s.flushDue()
		for {
			s.mu.Lock()
			batch := s.ready
			s.ready = s.spare[:0]
			if len(batch) == 0 {
				s.idle = true
				s.mu.Unlock()
				s.spare = batch
				break
			}
			s.mu.Unlock()
			for i, c := range batch {
				c.flush(s, 0)
				batch[i] = nil
			}
			s.spare = batch[:0]
		}
	}
}

// delay puts c aside until due, when its coalescing window ends. An entry
// whose connection was released early (conn.kick) stays until then and is
// passed over.
func (s *shard) delay(c *conn, due mono) {
	s.delayed = append(s.delayed, delayedConn{c, due})
	// Windows are the same length and start at each connection's last
	// write, so entries arrive nearly in order: keep them sorted by a
	// short walk from the end.
	for i := len(s.delayed) - 1; i > 0 && s.delayed[i].due < s.delayed[i-1].due; i-- {
		s.delayed[i], s.delayed[i-1] = s.delayed[i-1], s.delayed[i]
	}
}

// flushDue writes the delayed connections whose window has ended.
func (s *shard) flushDue() {
	now := monoNow()
	n := 0
	for n < len(s.delayed) && s.delayed[n].due <= now {
		s.delayed[n].c.flush(s, s.delayed[n].due)
		s.delayed[n] = delayedConn{}
		n++
	}
	if n > 0 {
		s.delayed = append(s.delayed[:0], s.delayed[n:]...)
	}
}

// frames lays out batch as header and payload buffers for one writev.
func (s *shard) frames(batch []outFrame) [][]byte {
	return appendFrames(&s.headers, s.bufs[:0], batch)
}

// appendFrames appends the buffers of batch to bufs, with the headers
// written into *headers (grown first, so the buffers stay valid).
func appendFrames(headers *[]byte, bufs [][]byte, batch []outFrame) [][]byte {
	need := len(batch) * maxFrameHeader
	if cap(*headers) < need {
		*headers = make([]byte, 0, need)
	}
	h := (*headers)[:0]
	for _, f := range batch {
		start := len(h)
		h = appendFrameHeader(h, f.typ, len(f.data))
		bufs = append(bufs, h[start:len(h):len(h)])
		if len(f.data) > 0 {
			bufs = append(bufs, f.data)
		}
	}
	*headers = h
	return bufs
}
