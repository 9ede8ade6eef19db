package client

import (
	"math/rand/v2"
	"time"
)

// backoff spaces reconnections: the delay doubles after each failure, up
// to most, with jitter so clients that lost the same broker do not all
// return at once; a connection that opens resets it.
type backoff struct {
	initial, most, delay time.Duration
}

func newBackoff(initial, most time.Duration) *backoff {
	if initial <= 0 {
		initial = 250 * time.Millisecond
	}
	if most <= 0 {
		most = 30 * time.Second
	}
	return &backoff{initial: initial, most: most, delay: initial}
}

func (b *backoff) reset() { b.delay = b.initial }

// next returns the next delay: half the current one and a random part
// of the other half.
func (b *backoff) next() time.Duration {
	d := b.delay/2 + rand.N(b.delay/2+1)
	b.delay = min(2*b.delay, b.most)
	return d
}
