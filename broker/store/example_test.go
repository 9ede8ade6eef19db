package store_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"sync"

	"github.com/mercury-broker/mercury/broker/store"
)

// Publishers on a durable bus store each message through one Committer and
// are told ok once it is on disk; concurrent publishers share fsyncs. A
// subscriber that asks for messages since a sequence number scans them
// back in order.
func Example() {
	dir, err := os.MkdirTemp("", "mercury-store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	kv, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()
	c := store.NewCommitter(kv)
	defer c.Close()

	// A message's key: m/<bus>\x00<8-byte big-endian sequence number>, so
	// that a bus's messages sort by sequence number.
	key := func(bus string, seq uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte("m/"+bus+"\x00"), seq)
	}
	var wg sync.WaitGroup
	for seq := uint64(1); seq <= 5; seq++ {
		wg.Go(func() {
			op := store.Op{Key: key("/livesys", seq), Value: fmt.Appendf(nil, "message %d", seq)}
			if err := c.Commit([]store.Op{op}); err != nil {
				log.Fatal(err)
			}
			// Only now is the publisher told {"ok":seq}.
		})
	}
	wg.Wait()

	// Replay from sequence number 3.
	err = kv.Scan([]byte("m//livesys\x00"), key("/livesys", 3), func(k, v []byte) bool {
		fmt.Printf("%d: %s\n", binary.BigEndian.Uint64(k[len(k)-8:]), v)
		return true
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 3: message 3
	// 4: message 4
	// 5: message 5
}
