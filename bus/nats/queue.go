package nats

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/broker"
)

// queueKey names a queue in consumer names and bucket keys, which allow
// fewer characters than topics.
func queueKey(topic broker.Topic) string {
	sum := sha256.Sum256([]byte(topic))
	return "q" + hex.EncodeToString(sum[:16])
}

// queueRecord is a queue's entry in the queue bucket.
type queueRecord struct {
	Topic broker.Topic  `json:"topic"`
	TTL   time.Duration `json:"ttl"`
	Used  time.Time     `json:"used"`
}

// touchEvery is how often one broker records that it used a queue: often
// enough that a queue in use never looks unused for its TTL.
func touchEvery(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 50*time.Millisecond), 10*time.Second)
}

// useQueue records that topic's queue was used now, creating it with ttl
// unless mustExist; at most once per touchEvery of the queue's TTL from
// this broker.
func (p *Backplane) useQueue(topic broker.Topic, ttl time.Duration, mustExist bool) error {
	now := time.Now()
	p.mu.Lock()
	last, ok := p.touched[topic]
	p.mu.Unlock()
	if ok && now.Before(last) {
		return nil
	}
	ctx, cancel := p.reqCtx()
	defer cancel()
	key := queueKey(topic)
	for range 3 {
		e, err := p.queueInfo.Get(ctx, key)
		rec := queueRecord{Topic: topic, TTL: ttl, Used: now}
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if mustExist {
				return broker.ErrNoQueue
			}
			val, _ := json.Marshal(rec)
			_, err = p.queueInfo.Create(ctx, key, val)
		case err == nil:
			// The queue keeps the TTL it was made with.
			var old queueRecord
			if json.Unmarshal(e.Value(), &old) == nil && old.Topic == topic && old.TTL > 0 {
				rec.TTL = old.TTL
			}
			val, _ := json.Marshal(rec)
			_, err = p.queueInfo.Update(ctx, key, val, e.Revision())
		}
		if err == nil {
			p.mu.Lock()
			p.touched[topic] = now.Add(touchEvery(rec.TTL)) // the next touch
			p.mu.Unlock()
			p.sweepFor(rec.TTL)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !strings.Contains(err.Error(), "wrong last sequence") {
			return p.unavailable("record the queue", err)
		}
		// Another broker wrote it meanwhile: read it again.
	}
	return nil
}

// Push stores m in topic's queue (broker.QueueBackplane). Its sequence
// number in the queue stream is its delivery id.
func (p *Backplane) Push(m *broker.Message, qp broker.QueuePolicy, opts broker.PushOptions) error {
	if err := p.Ready(); err != nil {
		return err
	}
	if err := p.useQueue(m.Topic, qp.TTL, opts.MustExist); err != nil {
		return err
	}
	msg := nats.NewMsg(subjectOf(p.queuePrefix, m.Topic))
	msg.Data = m.Payload
	if m.Binary {
		msg.Header.Set(hdrBinary, "1")
	}
	ctx, cancel := p.reqCtx()
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.queueStream))
	if err != nil {
		if strings.Contains(err.Error(), "maximum messages") {
			return broker.ErrQueueFull
		}
		return p.unavailable("queue the message", err)
	}
	m.Seq, m.Time = ack.Sequence, time.Now()
	return nil
}

// ackGrace is how much longer than the bus's ack timeout JetStream waits
// before it redelivers by itself: the broker holding a message gives it
// back at the ack timeout; JetStream's own redelivery is for a broker that
// went away.
func ackGrace(ackTimeout time.Duration) time.Duration { return max(ackTimeout/2, 5*time.Second) }

// OpenQueue starts taking topic's messages for this broker's pullers
// through the queue's durable pull consumer (broker.QueueBackplane).
func (p *Backplane) OpenQueue(topic broker.Topic, qp broker.QueuePolicy, feed broker.QueueFeed) (broker.RemoteQueue, error) {
	if err := p.Ready(); err != nil {
		return nil, err
	}
	if err := p.useQueue(topic, qp.TTL, false); err != nil {
		return nil, err
	}
	key := queueKey(topic)
	ctx, cancel := p.reqCtx()
	defer cancel()
	cons, err := p.js.CreateOrUpdateConsumer(ctx, p.queueStream, jetstream.ConsumerConfig{
		Durable: key, Description: "Mercury queue " + string(topic), FilterSubject: subjectOf(p.queuePrefix, topic),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: qp.AckTimeout + ackGrace(qp.AckTimeout),
		MaxDeliver: -1, MaxAckPending: -1, Metadata: map[string]string{"topic": string(topic)},
	})
	if err != nil {
		return nil, p.unavailable("open the queue's consumer", err)
	}
	q := &remoteQueue{p: p, topic: topic, key: key, cons: cons, feed: feed, ttl: qp.TTL, taken: newTaken(),
		poke: make(chan struct{}, 1), stop: make(chan struct{}), reconnects: p.nc.Stats().Reconnects}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("nats: the backplane is closed")
	}
	p.queues[key] = q
	p.fetchers.Go(q.run)
	return q, nil
}

// remoteQueue is this broker's hold on one queue (broker.RemoteQueue).
type remoteQueue struct {
	p     *Backplane
	topic broker.Topic
	key   string
	ttl   time.Duration // the queue's, should this broker make it again
	cons  jetstream.Consumer
	feed  broker.QueueFeed
	taken *taken // the stream sequences this hold took (taken.go)

	want     atomic.Int64
	poke     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once

	// Guarded by p.mu: this broker's pullers, for the puller bucket.
	local     int
	exclusive bool

	regMu sync.Mutex // held while this broker's key of the queue is written
	rev   uint64     // the key's revision this broker wrote last; 0: none
	// lost: the key was deleted or expired behind this broker's back; the
	// fetcher evicts the pullers. suspect: it may have been; the fetcher
	// checks before it fetches again.
	lost, suspect atomic.Bool
	reconnects    uint64 // the connection's reconnections the fetcher saw; its own
}

// fetchWait bounds one fetch: a puller's new credit waits at most this
// long for the fetch before to end.
const fetchWait = time.Second

// run fetches as many messages as the pullers want and offers them.
func (q *remoteQueue) run() {
	defer q.unregister()
	for {
		if q.lost.Load() {
			q.p.log.Info("cluster: queue taken over by another broker, or this broker's lease ran out while cut off; evicting its pullers here",
				"topic", q.topic)
			q.feed.Evict("taken over")
			return
		}
		if r := q.p.nc.Stats().Reconnects; r != q.reconnects {
			q.reconnects = r
			q.suspect.Store(true)
		}
		if q.suspect.Swap(false) && !q.renew() {
			if !q.lost.Load() {
				q.suspect.Store(true) // not checked: NATS is away still
			}
			select {
			case <-q.stop:
				return
			case <-q.poke:
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		n := int(q.want.Load())
		if n <= 0 {
			select {
			case <-q.poke:
				continue
			case <-q.stop:
				return
			}
		}
		batch, err := q.cons.Fetch(min(n, 256), jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			// What this broker may no longer take goes back once the
			// fetch is over: given back during it, a message would come
			// back to the same fetch, each time a delivery JetStream counts.
			var back []*settler
			for msg := range batch.Messages() {
				if st := q.take(msg); st != nil {
					back = append(back, st)
				}
			}
			err = batch.Error()
			for _, st := range back {
				st.Return()
			}
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			q.p.log.Debug("cluster: fetch", "topic", q.topic, "err", err)
			select {
			case <-q.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
		select {
		case <-q.stop:
			return
		default:
		}
	}
}

// take offers one fetched message, and returns its settler when this
// broker may no longer take it, to be given back once the fetch is over.
func (q *remoteQueue) take(msg jetstream.Msg) (back *settler) {
	m, meta, err := messageOf(q.p.queuePrefix, msg)
	if err != nil {
		q.p.log.Error("cluster: a message that is not Mercury's in the queue stream", "subject", msg.Subject(), "err", err)
		msg.Term()
		return nil
	}
	seq := meta.Sequence.Stream
	if ok, acked := q.taken.take(seq, meta.NumDelivered, time.Now()); !ok {
		// Settled by the copy this broker holds, or settled already: an
		// acknowledged one is acknowledged again, in case the first went
		// astray.
		q.p.log.Warn("cluster: NATS delivered a queued message again that this broker holds or just settled; not handed out twice",
			"topic", q.topic, "seq", seq, "delivered", meta.NumDelivered, "acked", acked)
		if acked {
			msg.Ack()
		}
		return nil
	}
	st := &settler{p: q.p, msg: msg, topic: q.topic, key: uncountedKey(q.key, seq), seq: seq, taken: q.taken}
	attempt := int(meta.NumDelivered)
	if attempt > 1 {
		// JetStream counts every delivery; some were no attempt.
		st.uncounted = q.p.uncountedOf(st.key)
		attempt = max(attempt-st.uncounted, 1)
	}
	if q.suspect.Load() || q.lost.Load() || q.stopped() {
		return st // perhaps no longer this broker's to take
	}
	if id, err := strconv.ParseUint(msg.Headers().Get(hdrID), 10, 64); err == nil && id > 0 {
		m.Seq = id // a requeued dead letter keeps the id it had
	}
	q.feed.Offer(m, attempt, st)
	return nil
}

// stopped reports whether Close was called.
func (q *remoteQueue) stopped() bool {
	select {
	case <-q.stop:
		return true
	default:
		return false
	}
}

// Want sets how many messages the local pullers can take (broker.RemoteQueue).
func (q *remoteQueue) Want(n int) {
	if q.want.Swap(int64(n)) != int64(n) {
		q.wake()
	}
}

// wake makes the fetcher look at the queue again.
func (q *remoteQueue) wake() {
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

// Close stops fetching; the fetcher leaves the puller bucket on its way
// out (broker.RemoteQueue).
func (q *remoteQueue) Close() {
	q.stopOnce.Do(func() { close(q.stop) })
}

// unregister forgets q, and its pullers in the bucket.
func (q *remoteQueue) unregister() {
	p := q.p
	p.mu.Lock()
	if p.queues[q.key] == q {
		delete(p.queues, q.key)
	}
	q.local = 0
	p.mu.Unlock()
	q.regMu.Lock()
	defer q.regMu.Unlock()
	if q.rev == 0 || q.lost.Load() {
		return
	}
	// The pullers leaving are a use: the queue's TTL runs from now, not
	// from the last refresh (pullerLease/3 ago at most). Recorded before
	// the key goes, so no sweeper sees the queue unused meanwhile.
	p.mu.Lock()
	delete(p.touched, q.topic)
	p.mu.Unlock()
	p.useQueue(q.topic, q.ttl, false)
	// Conditional: the key may be another hold's on the same queue now.
	if _, err := p.writePullers(q, q.rev, 0, false); err != nil && !errors.Is(err, errLeaseLost) {
		p.log.Debug("cluster: failed to unregister pullers", "topic", q.topic, "err", err)
	}
	q.rev = 0
}

// settler settles one queued message on JetStream (broker.Settler).
type settler struct {
	p         *Backplane
	msg       jetstream.Msg
	topic     broker.Topic
	key       string // in the uncounted bucket
	uncounted int    // its deliveries so far that were no attempt
	seq       uint64 // in the queue stream
	taken     *taken
}

// uncountedKey names a queued message in the uncounted bucket.
func uncountedKey(queue string, seq uint64) string { return queue + "." + itoa(seq) }

// uncountedOf returns how many deliveries of a message were no attempt.
func (p *Backplane) uncountedOf(key string) int {
	ctx, cancel := p.reqCtx()
	defer cancel()
	e, err := p.uncounted.Get(ctx, key)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(e.Value()))
	return n
}

// forget deletes the message's uncounted deliveries once it is gone.
func (s *settler) forget() {
	if s.uncounted == 0 {
		return
	}
	ctx, cancel := s.p.reqCtx()
	defer cancel()
	s.p.uncounted.Delete(ctx, s.key)
}

func (s *settler) Ack() {
	s.taken.settle(s.seq, true, time.Now())
	if err := s.msg.Ack(); err != nil {
		s.p.log.Warn("cluster: failed to acknowledge; the message will be delivered again", "topic", s.topic, "err", err)
		return
	}
	s.forget()
}

// Return gives the message back, noting that this delivery, which JetStream
// counts, was no attempt. Only the broker holding a message writes its
// count, so reading it at delivery and writing it here needs no lock.
func (s *settler) Return() {
	ctx, cancel := s.p.reqCtx()
	_, err := s.p.uncounted.Put(ctx, s.key, []byte(strconv.Itoa(s.uncounted+1)))
	cancel()
	if err != nil {
		s.p.log.Debug("cluster: failed to note a delivery that was no attempt", "topic", s.topic, "err", err)
	}
	s.Nak(0)
}

func (s *settler) Nak(delay time.Duration) {
	s.taken.settle(s.seq, false, time.Now())
	var err error
	if delay > 0 {
		err = s.msg.NakWithDelay(delay)
	} else {
		err = s.msg.Nak()
	}
	if err != nil {
		s.p.log.Debug("cluster: failed to give a message back; it comes back after its ack wait", "topic", s.topic, "err", err)
	}
}

// Dead stores dl in the dead-letter stream, then takes the message off its
// queue. When the dead letter cannot be stored, the message is given back
// and dies on its next delivery.
func (s *settler) Dead(dl broker.DeadLetter) {
	msg := nats.NewMsg(subjectOf(s.p.deadPrefix, s.topic))
	msg.Data = dl.Message.Payload
	setDeadHeaders(msg.Header, dl)
	ctx, cancel := s.p.reqCtx()
	defer cancel()
	if _, err := s.p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(s.p.deadStream)); err != nil {
		s.p.log.Warn("cluster: failed to store a dead letter; it stays queued", "topic", s.topic, "id", dl.ID, "err", err)
		s.taken.settle(s.seq, false, time.Now())
		s.msg.Nak()
		return
	}
	s.taken.settle(s.seq, true, time.Now())
	if err := s.msg.Ack(); err != nil {
		s.p.log.Warn("cluster: failed to take a dead letter off its queue", "topic", s.topic, "id", dl.ID, "err", err)
		return
	}
	s.forget()
}

func setDeadHeaders(h nats.Header, dl broker.DeadLetter) {
	h.Set(hdrID, itoa(dl.ID))
	h.Set(hdrAttempts, itoa(uint64(dl.Attempts)))
	h.Set(hdrError, dl.LastError)
	h.Set(hdrTime, dl.Message.Time.UTC().Format(time.RFC3339Nano))
	if dl.Message.Binary {
		h.Set(hdrBinary, "1")
	}
}

var (
	_ broker.RemoteQueue = (*remoteQueue)(nil)
	_ broker.Settler     = (*settler)(nil)
)
