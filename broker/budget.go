package broker

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The memory budget: one bound on the message bytes the broker holds for
// clients, in queues (waiting, in flight and dead letters) and in
// in-memory history. Outgoing queues are not in it: each connection's is
// bounded on its own (web Options.OutgoingQueue), and counting them here
// would let a subscriber that stops reading pause pushers it has nothing
// to do with.

// DefaultQueueMaxBytes is the default of QueuePolicy.MaxBytes.
const DefaultQueueMaxBytes = 64 << 20

// messageOverhead is what one held message costs beyond its payload (the
// Message and Delivery structs and their slots): an empty message is not
// free.
const messageOverhead = 256

// heldSize is what m counts against a queue's MaxBytes and the budget.
func heldSize(m *Message) int64 { return int64(len(m.Payload)) + messageOverhead }

// QueueFullError says which limit refused a push. It matches ErrQueueFull.
type QueueFullError struct {
	Limit string // "queue_limit", "queue.max_bytes" or "max_memory"
	Value int64  // the limit's value: messages or bytes
}

func (e *QueueFullError) Error() string {
	switch e.Limit {
	case "queue_limit":
		return fmt.Sprintf("queue is full: it holds its limit of %d waiting messages (queue_limit)", e.Value)
	case "queue.max_bytes":
		return fmt.Sprintf("queue is full: its waiting messages reach its limit of %d bytes (queue.max_bytes)", e.Value)
	}
	return fmt.Sprintf("broker memory is full: what it holds for clients reaches its limit of %d bytes (max_memory)", e.Value)
}

// Is makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

// memBudget counts the bytes held against Options.MaxMemory, and wakes
// those waiting for room when some is given back.
type memBudget struct {
	limit int64
	used  atomic.Int64

	mu      sync.Mutex
	room    chan struct{} // closed when room is made; nil when nobody waits
	waiting atomic.Bool   // room is not nil
}

// tryCharge counts n more bytes unless that would pass the limit; a
// budget holding nothing takes anything, so a message bigger than the
// limit is not refused forever.
func (mb *memBudget) tryCharge(n int64) bool {
	for {
		u := mb.used.Load()
		if u > 0 && u+n > mb.limit {
			return false
		}
		if mb.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// charge counts n bytes whatever the limit: what is loaded from the store
// or kept as history is held anyway.
func (mb *memBudget) charge(n int64) { mb.used.Add(n) }

// release gives back n bytes.
func (mb *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	mb.used.Add(-n)
	mb.wake()
}

// wake tells the waiters that there may be room now. It costs one atomic
// load when nobody waits.
func (mb *memBudget) wake() {
	if !mb.waiting.Load() {
		return
	}
	mb.mu.Lock()
	if mb.room != nil {
		close(mb.room)
		mb.room = nil
		mb.waiting.Store(false)
	}
	mb.mu.Unlock()
}

// Room returns a channel closed when a queue makes room: a puller took a
// message, or held bytes were given back. A pusher refused with
// ErrQueueFull takes it before trying again and waits on it after, so a
// change in between is not missed. On a cluster, room made on other nodes
// does not close it: wait with a timeout too.
func (b *Broker) Room() <-chan struct{} {
	mb := &b.mem
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.room == nil {
		mb.room = make(chan struct{})
		mb.waiting.Store(true)
	}
	return mb.room
}

// MemoryUsed is the bytes the broker holds for clients, counted against
// MaxMemory.
func (b *Broker) MemoryUsed() int64 { return b.mem.used.Load() }

// MaxMemory is the broker's memory budget (Options.MaxMemory).
func (b *Broker) MaxMemory() int64 { return b.mem.limit }

// DefaultMaxMemory is a quarter of the machine's memory or 1 GiB,
// whichever is less; 1 GiB when the machine's memory is not known.
func DefaultMaxMemory() int64 {
	const ceiling = 1 << 30
	total, err := memTotal("/proc/meminfo")
	if err != nil || total <= 0 {
		return ceiling
	}
	return min(total/4, ceiling)
}

// memTotal reads MemTotal from a meminfo file, in bytes.
func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to read MemTotal: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal in " + path)
}
