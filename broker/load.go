package broker

import (
	"fmt"
	"slices"
)

// load restores what the store kept: the sequence lease, the retained
// messages of durable buses, and their queues. Deliveries that were in
// flight when the broker stopped wait again, with the same id.
func (b *Broker) load() error {
	st := b.opts.Store
	lease, err := st.LoadSeq()
	if err != nil {
		return fmt.Errorf("failed to load the sequence lease: %w", err)
	}
	b.seq, b.seqLease, b.historyFrom = lease, lease, lease
	if err := b.loadEpoch(); err != nil {
		return err
	}

	trims, err := st.LoadTrims()
	if err != nil {
		return fmt.Errorf("failed to load history trims: %w", err)
	}
	ringOf := func(bus Topic) *ring {
		r := b.rings[bus]
		if r == nil {
			r = &ring{dropped: trims[bus], mem: &b.mem}
			b.rings[bus] = r
		}
		return r
	}
	// A durable bus's history survives the restart even when it is empty.
	for _, pol := range b.policies().All() {
		if pol.Durable {
			ringOf(pol.Bus)
		}
	}
	for bus := range trims {
		ringOf(bus)
	}
	err = st.LoadMessages(func(bus Topic, m *Message) error {
		if m.Seq > lease {
			return fmt.Errorf("message %d of bus %s is above the sequence lease %d", m.Seq, bus, lease)
		}
		m.Epoch = b.epoch // the store's sequence numbers are all of its epoch
		ringOf(bus).keep(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to load messages: %w", err)
	}
	now := b.opts.Now()
	for bus, r := range b.rings {
		r.trim(historyOf(b.policies().Lookup(bus)), now)
	}

	err = st.LoadQueued(func(topic Topic, rec QueuedMessage) error {
		q, err := b.lockQueue(topic, false, 0)
		if err != nil {
			return err
		}
		defer q.mu.Unlock()
		q.durable = true
		size := heldSize(rec.Message)
		q.bytes += size
		b.mem.charge(size)
		if rec.Dead {
			q.deadBytes += size
			q.dead = append(q.dead, &DeadLetter{ID: rec.Message.Seq, Message: rec.Message,
				Attempts: rec.Attempts, LastError: rec.LastError, Died: rec.Died})
			return nil
		}
		d := &Delivery{Message: rec.Message, Attempt: rec.Attempts, LastError: rec.LastError, q: q}
		if rec.NotBefore.After(now) {
			// Nacked with a delay that has not run out yet.
			d.notBefore = rec.NotBefore
			q.delayed = append(q.delayed, d)
			return nil
		}
		q.pending = append(q.pending, d)
		q.scheduleLocked()
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to load queues: %w", err)
	}
	b.queuesMu.Lock()
	defer b.queuesMu.Unlock()
	for _, q := range b.queues {
		q.mu.Lock()
		slices.SortStableFunc(q.delayed, func(x, y *Delivery) int { return x.notBefore.Compare(y.notBefore) })
		q.scheduleLocked()
		q.mu.Unlock()
	}
	return nil
}
