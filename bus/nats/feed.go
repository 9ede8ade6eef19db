package nats

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// A broker's feed is an ordered consumer of the message stream filtered on
// what its subscribers and bus peers want (interest.go), not the whole
// stream: with N brokers a message is decoded by those that want it, not
// N times. The consumer is replaced when the interest changes; in
// between, the feed is paused at a known sequence number, so that no
// subscriber misses a message or gets one twice:
//
//  1. the old consumer is stopped; last is the last message delivered;
//  2. upTo is the stream's last sequence number now;
//  3. the old selection's messages in (last, upTo] are read and
//     delivered (those the old consumer had not delivered yet);
//  4. the new subscribers attach at upTo;
//  5. the new consumer, on the new selection, starts after upTo.
//
// A new interest that the running selection covers attaches at once.
// Interests dropped narrow the selection after narrowDelay, in one change.
// When NATS cannot be reached, the feed stays paused at last, with the new
// subscribers attached there, and starts again from it (steps 2 to 5).

// narrowDelay is how long the feed keeps taking the subjects nobody wants
// any more, so that clients coming and going do not replace the consumer
// each time.
var narrowDelay = time.Second

// retryDelay is how long the feed waits before trying again to start
// after NATS refused or did not answer.
const retryDelay = 500 * time.Millisecond

// feed is this broker's consumer of the message stream.
type feed struct {
	p       *Backplane
	deliver func(*broker.Message, broker.Kind, broker.Origin)

	// mu is held while a message is delivered and while the consumer
	// changes: it pauses the feed.
	mu      sync.Mutex
	gen     uint64                   // the consumer whose messages are delivered
	last    uint64                   // the stream sequence delivered up to
	cc      jetstream.ConsumeContext // nil: paused at last
	sel     *selection               // what the feed takes after last
	pending []pendingWant            // waiting for the next change
	oldLog  bool                     // the fallback to the whole stream was logged
	closed  bool

	wmu  sync.Mutex
	refs map[interest]int // how many subscribers and peers want each

	narrowDelay time.Duration
	kick        chan struct{} // a change is due now
	narrow      chan struct{} // a change is due after narrowDelay
	received    atomic.Uint64 // messages decoded
}

// pendingWant is a new interest waiting for the next change of consumer.
type pendingWant struct {
	attach func(from uint64)
	done   chan struct{}
}

// Start starts this broker's feed from the next message on
// (broker.Backplane); it takes nothing until Want is called. The NATS
// client recreates the consumer from where it stopped after a
// reconnection, so the feed has neither gap nor duplicate.
func (p *Backplane) Start(deliver func(m *broker.Message, kind broker.Kind, from broker.Origin)) (uint64, error) {
	ctx, cancel := p.reqCtx()
	defer cancel()
	st, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return 0, p.unavailable("open the message stream", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, p.unavailable("read the message stream", err)
	}
	last := info.State.LastSeq
	// The stream's sequence numbers start afresh only with a new stream:
	// its creation names their epoch, the same for every broker.
	epoch := strconv.FormatInt(info.Created.UnixNano(), 36)
	f := &feed{
		p: p, deliver: deliver, last: last, sel: p.selectionOf(nil, maxFeedFilters), narrowDelay: narrowDelay,
		refs: make(map[interest]int), kick: make(chan struct{}, 1), narrow: make(chan struct{}, 1),
	}
	f.mu.Lock()
	if p.oneFilter.Load() {
		f.sel = f.wholeStream()
	}
	// Nothing wanted yet: no consumer until something is.
	if f.sel.whole {
		err = f.consume()
	}
	f.mu.Unlock()
	if err != nil {
		return 0, p.unavailable("follow the message stream", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.feed != nil || p.closed {
		f.close()
		return 0, fmt.Errorf("nats: the feed was already started, or the backplane closed")
	}
	p.feed, p.epoch = f, epoch
	p.wg.Go(f.changer)
	return last, nil
}

// Want adds an interest (broker.InterestFeed): attach runs at once if
// the feed takes it already, else with the next change of consumer.
func (p *Backplane) Want(kind broker.Kind, topic broker.Topic, attach func(from uint64)) (release func()) {
	p.mu.Lock()
	f := p.feed
	p.mu.Unlock()
	if f == nil {
		attach(0)
		return func() {}
	}
	return f.want(interest{kind, topic}, attach)
}

// MessagesReceived returns how many messages this broker's feed decoded.
func (p *Backplane) MessagesReceived() uint64 {
	p.mu.Lock()
	f := p.feed
	p.mu.Unlock()
	if f == nil {
		return 0
	}
	return f.received.Load()
}

func (f *feed) want(w interest, attach func(from uint64)) (release func()) {
	f.wmu.Lock()
	f.refs[w]++
	f.wmu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			f.wmu.Lock()
			if f.refs[w]--; f.refs[w] == 0 {
				delete(f.refs, w)
				signal(f.narrow)
			}
			f.wmu.Unlock()
		})
	}
	f.mu.Lock()
	if f.closed || f.sel.covers(f.p, w) {
		attach(f.last)
		f.mu.Unlock()
		return release
	}
	pw := pendingWant{attach: attach, done: make(chan struct{})}
	f.pending = append(f.pending, pw)
	f.mu.Unlock()
	signal(f.kick)
	<-pw.done
	return release
}

// signal wakes whoever waits on ch, once.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// changer replaces the consumer when the interest changes, until the
// backplane closes.
func (f *feed) changer() {
	var narrowAt, retryAt <-chan time.Time
	for {
		select {
		case <-f.p.ctx.Done():
			f.close()
			return
		case <-f.kick:
		case <-f.narrow:
			if narrowAt == nil {
				narrowAt = time.After(f.narrowDelay)
			}
			continue
		case <-narrowAt:
			narrowAt = nil
		case <-retryAt:
			retryAt = nil
		}
		if !f.change() && retryAt == nil {
			retryAt = time.After(retryDelay)
		}
	}
}

// close stops the feed for good; the interests still waiting attach
// where it stopped.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.stop()
	f.attachPending()
}

// attachPending attaches the interests waiting, where the feed is paused.
func (f *feed) attachPending() {
	for _, pw := range f.pending {
		pw.attach(f.last)
		close(pw.done)
	}
	f.pending = nil
}

// wants returns the interests wanted now.
func (f *feed) wants() []interest {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	out := make([]interest, 0, len(f.refs))
	for w := range f.refs {
		out = append(out, w)
	}
	return out
}

// wholeStream is the selection of a server that takes one filter per
// consumer (before 2.10), said once in the log.
func (f *feed) wholeStream() *selection {
	if !f.oldLog {
		f.oldLog = true
		f.p.log.Warn("cluster: the NATS server takes one subject filter per consumer (before 2.10): this broker's feed reads the whole message stream")
	}
	return wholeStream
}

// change moves the feed to the selection of what is wanted now, and
// attaches the pending interests (the steps above). It reports false when
// NATS failed it: the feed is then paused, to be started again.
func (f *feed) change() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return true
	}
	next := f.p.selectionOf(f.wants(), maxFeedFilters)
	if f.p.oneFilter.Load() {
		next = f.wholeStream()
	}
	if f.cc != nil && next.same(f.sel) && len(f.pending) == 0 {
		return true
	}
	f.stop()
	err := f.catchUp()
	// The new interests attach where the feed is paused, whatever
	// happened: from there on, they are in the selection.
	f.attachPending()
	if err != nil {
		// Paused at last, the feed still owes the old selection's
		// messages after it.
		f.sel = f.sel.merge(next, maxFeedFilters)
		f.p.log.Warn("cluster: failed to move the feed; paused until NATS answers", "err", err)
		return false
	}
	f.sel = next
	if !f.sel.whole && len(f.sel.filters) == 0 {
		return true // nothing wanted: no consumer
	}
	if err := f.consume(); err != nil {
		if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
			f.p.oneFilter.Store(true)
		}
		f.p.log.Warn("cluster: failed to follow the message stream; paused until NATS answers", "err", err)
		return false
	}
	return true
}

// stop stops the consumer; what it still brings is dropped. mu is held.
func (f *feed) stop() {
	f.gen++
	if f.cc != nil {
		f.cc.Stop()
		f.cc = nil
	}
}

// consume starts a consumer of the selection after last. mu is held.
func (f *feed) consume() error {
	ctx, cancel := f.p.reqCtx()
	defer cancel()
	st, err := f.p.js.Stream(ctx, f.p.stream)
	if err != nil {
		return err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: f.sel.filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: f.last + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	gen := f.gen
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if gen == f.gen {
			f.handle(msg)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		switch {
		case errors.Is(err, jetstream.ErrNoHeartbeat):
		case errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported):
			// Reconnected to an older server: read the whole stream.
			f.p.oneFilter.Store(true)
			signal(f.kick)
		default:
			f.p.log.Warn("cluster: feed", "err", err)
		}
	}))
	if err != nil {
		return err
	}
	f.cc = cc
	return nil
}

// catchUp delivers the selection's messages after last up to the
// stream's last message now, and moves last there. mu is held.
func (f *feed) catchUp() error {
	ctx, cancel := f.p.reqCtx()
	defer cancel()
	st, err := f.p.js.Stream(ctx, f.p.stream)
	if err != nil {
		return err
	}
	upTo := st.CachedInfo().State.LastSeq
	if upTo <= f.last {
		return nil
	}
	if !f.sel.whole && len(f.sel.filters) == 0 {
		f.last = upTo
		return nil
	}
	if err := readRange(ctx, st, f.sel.filters, f.last, upTo, f.handle); err != nil {
		return err
	}
	f.last = upTo
	return nil
}

// handle decodes a message of the stream and delivers it. mu is held.
func (f *feed) handle(msg jetstream.Msg) {
	f.received.Add(1)
	kind, prefix := broker.KindPublish, f.p.pubPrefix
	if strings.HasPrefix(msg.Subject(), f.p.busPrefix+".") {
		kind, prefix = broker.KindBus, f.p.busPrefix
	}
	m, _, err := messageOf(prefix, msg)
	if err != nil {
		f.p.log.Error("cluster: a message that is not Mercury's in the stream", "subject", msg.Subject(), "err", err)
		return
	}
	if m.Seq <= f.last {
		return // delivered already
	}
	f.last = m.Seq
	from := broker.Origin{Node: msg.Headers().Get(hdrNode)}
	from.Peer, _ = strconv.ParseUint(msg.Headers().Get(hdrPeer), 10, 64)
	f.deliver(m, kind, from)
}

// Epoch returns the epoch of the stream's sequence numbers, known once
// the feed started (broker.Epocher).
func (p *Backplane) Epoch() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

var _ broker.Epocher = (*Backplane)(nil)
