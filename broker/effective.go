package broker

// What a bus's policy means once the defaults are filled in, for those
// who show it (mercury config check, GET /api/buses): what is shown is
// what the broker does.

// EffectiveHistory is what the bus keeps for replay: its history, or
// for a durable bus that names none, DefaultDurableHistory.
func (p *Policy) EffectiveHistory() History { return historyOf(p) }

// WithDefaults returns qp with each setting it leaves zero at its
// default; limit is the broker's queue limit (Options.QueueLimit; 0:
// DefaultQueueLimit).
func (qp QueuePolicy) WithDefaults(limit int) QueuePolicy {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	if qp.Limit <= 0 {
		qp.Limit = limit
	}
	if qp.MaxBytes <= 0 {
		qp.MaxBytes = DefaultQueueMaxBytes
	}
	if qp.MaxAttempts <= 0 {
		qp.MaxAttempts = DefaultMaxAttempts
	}
	if qp.AckTimeout <= 0 {
		qp.AckTimeout = DefaultAckTimeout
	}
	if qp.TTL <= 0 {
		qp.TTL = DefaultQueueTTL
	}
	return qp
}

// QueueLimit is the broker's default limit of messages waiting in a
// queue (Options.QueueLimit).
func (b *Broker) QueueLimit() int { return b.opts.QueueLimit }
