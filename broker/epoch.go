package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// The epoch names one life of a broker's sequence numbers. Without a
// store they start afresh at each start, so a position (a sequence number
// a client saw) from before a restart would name another message now, or
// none yet. The epoch tells the two lives apart: a fresh random one at
// each start without a store; with a store, one kept in it as long as its
// sequence numbers are; on a backplane, the backplane's (see Epocher).

// Epocher is a Backplane whose sequence numbers have an epoch of their
// own, the same on every broker sharing it.
type Epocher interface {
	// Epoch returns the epoch of the sequence numbers; it is called after
	// Start.
	Epoch() string
}

// newEpoch returns a short random epoch.
func newEpoch() string {
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// Epoch returns the epoch of this broker's sequence numbers; every
// message it accepts carries it. Empty on a backplane without one.
func (b *Broker) Epoch() string { return b.epoch }

// loadEpoch restores the store's epoch, or gives a new store one.
func (b *Broker) loadEpoch() error {
	st := b.opts.Store
	epoch, err := st.LoadEpoch()
	if err != nil {
		return fmt.Errorf("failed to load the epoch: %w", err)
	}
	if epoch == "" {
		// A new store, or one kept before epochs: its sequence numbers
		// carry on, under a name from now on.
		epoch = newEpoch()
		if err := st.SaveEpoch(epoch); err != nil {
			return fmt.Errorf("failed to save the epoch: %w", err)
		}
	}
	b.epoch = epoch
	return nil
}

// Position is where a subscriber got to: the sequence number of the last
// message it saw, and the epoch that number is from ("" when the client
// did not say, as clients from before epochs do).
type Position struct {
	Seq   uint64
	Epoch string
}

// String returns the position as EPOCH:SEQ, or SEQ without an epoch.
func (p Position) String() string {
	if p.Epoch == "" {
		return strconv.FormatUint(p.Seq, 10)
	}
	return p.Epoch + ":" + strconv.FormatUint(p.Seq, 10)
}

// ParsePosition reads a position written by Position.String: SEQ or
// EPOCH:SEQ.
func ParsePosition(s string) (Position, error) {
	epoch, seq, found := strings.Cut(s, ":")
	if !found {
		epoch, seq = "", s
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || found && epoch == "" {
		return Position{}, fmt.Errorf("broker: position %q: want a sequence number, or EPOCH:SEQ", s)
	}
	return Position{Seq: n, Epoch: epoch}, nil
}
