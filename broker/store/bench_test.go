package store

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks model Mercury's use of the store, for each engine and for
// the in-memory baseline (no disk, no fsync), so that each engine's figures
// can be read as a ratio against the baseline measured in the same run.
// The data lives under the default temporary directory; set TMPDIR to the
// disk the broker's --data-dir would be on (not a tmpfs, where an fsync
// costs nothing). README.md ("Choosing the durable store") has the command
// and the figures.

var benchEngines = []engine{memEngine, pebbleEngine, boltEngine}

// recordSize is the size of a stored message record (envelope and payload
// of a small JSON message).
const recordSize = 200

// record returns a message record of recordSize bytes for seq: JSON-like,
// so that compression has what it would have in production.
func record(seq uint64) []byte {
	r := fmt.Appendf(nil, `{"topic":"/livesys/%d/cmd","seq":%d,"time":"2026-11-24T11:00:00.%09dZ","data":{"cmd":"reboot","args":["--now"],"id":"%016x"`, seq%1000, seq, seq%1e9, seq*0x9e3779b97f4a7c15)
	for len(r) < recordSize-2 {
		r = append(r, ' ')
	}
	return append(r, "}}"...)
}

// countKV counts the batches applied to a KV: with a Committer in front,
// the number of fsyncs.
type countKV struct {
	KV
	applies atomic.Int64
}

func (c *countKV) Apply(ops []Op, sync bool) error {
	c.applies.Add(1)
	return c.KV.Apply(ops, sync)
}

// BenchmarkPublish: each publisher stores its message record through the
// Committer and waits until it is durable, as a publisher on a durable bus
// waits for {"ok":SEQ}. Reports messages per second, confirm latency p50
// and p99, and messages per fsync (how well group commit shares).
func BenchmarkPublish(b *testing.B) {
	for _, e := range benchEngines {
		for _, publishers := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/publishers=%d", e.name, publishers), func(b *testing.B) {
				benchPublish(b, e, publishers)
			})
		}
	}
}

func benchPublish(b *testing.B, e engine, publishers int) {
	kv := &countKV{KV: openKV(b, e, b.TempDir())}
	c := NewCommitter(kv)
	defer c.Close()
	var seq atomic.Uint64
	lat := make([][]time.Duration, publishers)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for {
				n := seq.Add(1)
				if n > uint64(b.N) {
					return
				}
				op := Op{Key: seqKey("livesys", n), Value: record(n)}
				t0 := time.Now()
				if err := c.Commit([]Op{op}); err != nil {
					b.Error(err)
					return
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(percentile(all, 50).Seconds()*1e6, "p50-µs")
	b.ReportMetric(percentile(all, 99).Seconds()*1e6, "p99-µs")
	b.ReportMetric(float64(b.N)/float64(kv.applies.Load()), "msgs/fsync")
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

// BenchmarkReplay: a subscriber asks for ?since=SEQ on a bus with 150,000
// stored records (interleaved on disk with another bus's as many) and gets
// the 100,000 after SEQ. Reports records replayed per second and the
// store's size on disk.
func BenchmarkReplay(b *testing.B) {
	for _, e := range benchEngines {
		b.Run(e.name, func(b *testing.B) { benchReplay(b, e) })
	}
}

func benchReplay(b *testing.B, e engine) {
	const stored, replayed = 150_000, 100_000
	dir := b.TempDir()
	kv := openKV(b, e, dir)
	var ops []Op
	for seq := uint64(1); seq <= stored; seq++ {
		ops = append(ops,
			Op{Key: seqKey("livesys", 2*seq), Value: record(2 * seq)},
			Op{Key: seqKey("jobs", 2*seq+1), Value: record(2*seq + 1)})
		if len(ops) == 1000 || seq == stored {
			if err := kv.Apply(ops, seq == stored); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	bus, from := []byte("m/livesys\x00"), seqKey("livesys", 2*(stored-replayed+1))
	scanRecords(b, kv, bus, from, replayed) // warm: a running broker's store, not a cold start
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		scanRecords(b, kv, bus, from, replayed)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(replayed*b.N)/elapsed.Seconds(), "msgs/s")
	if e.durable {
		b.ReportMetric(float64(dirSize(b, dir))/(1<<20), "disk-MB")
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return size
}

// BenchmarkQueue models a reliable work queue.
//
// enqueue-ack: each worker pushes a job (a synced put through the
// Committer, as a pusher waits for {"ok":SEQ}) and then acks it (a synced
// delete through the Committer, so that an answered ack is never
// redelivered). Reports store operations (enqueues plus acks) per second.
//
// redelivery-scan: after 100,000 jobs of which the oldest 90,000 were
// acked, the queue's 10,000 unacked jobs are read back in order (as after
// a restart or when pullers leave). Reports jobs read per second.
func BenchmarkQueue(b *testing.B) {
	for _, e := range benchEngines {
		for _, workers := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/enqueue-ack/workers=%d", e.name, workers), func(b *testing.B) {
				benchEnqueueAck(b, e, workers)
			})
		}
		b.Run(e.name+"/redelivery-scan", func(b *testing.B) { benchRedeliveryScan(b, e) })
	}
}

// queueKey is a job's key: q/<queue>\x00<seq>.
func queueKey(queue string, seq uint64) []byte {
	k := append([]byte("q/"+queue+"\x00"), make([]byte, 8)...)
	for i := range 8 {
		k[len(k)-1-i] = byte(seq >> (8 * i))
	}
	return k
}

func benchEnqueueAck(b *testing.B, e engine, workers int) {
	kv := &countKV{KV: openKV(b, e, b.TempDir())}
	c := NewCommitter(kv)
	defer c.Close()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				n := seq.Add(1)
				if n > uint64(b.N) {
					return
				}
				k := queueKey("jobs", n)
				if err := c.Commit([]Op{{Key: k, Value: record(n)}}); err != nil {
					b.Error(err)
					return
				}
				if err := c.Commit([]Op{{Key: k, Delete: true}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(2*b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(2*b.N)/float64(kv.applies.Load()), "ops/fsync")
}

func benchRedeliveryScan(b *testing.B, e engine) {
	const jobs, unacked = 100_000, 10_000
	kv := openKV(b, e, b.TempDir())
	var ops []Op
	for seq := uint64(1); seq <= jobs; seq++ {
		ops = append(ops, Op{Key: queueKey("jobs", seq), Value: record(seq)})
		// Workers ack jobs a little behind the pushers.
		if acked := seq - unacked; seq > unacked && acked <= jobs-unacked {
			ops = append(ops, Op{Key: queueKey("jobs", acked), Delete: true})
		}
		if len(ops) >= 1000 || seq == jobs {
			if err := kv.Apply(ops, seq == jobs); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	queue := []byte("q/jobs\x00")
	scanRecords(b, kv, queue, nil, unacked) // warm, as in BenchmarkReplay
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		scanRecords(b, kv, queue, nil, unacked)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(unacked*b.N)/elapsed.Seconds(), "msgs/s")
}

// scanRecords scans prefix from start, copying each value out as a replay
// would to send it, and checks that it found want records.
func scanRecords(b *testing.B, kv KV, prefix, start []byte, want int) {
	n, size := 0, 0
	err := kv.Scan(prefix, start, func(_, v []byte) bool {
		if len(scanBuf)+len(v) > cap(scanBuf) {
			scanBuf = scanBuf[:0]
		}
		scanBuf = append(scanBuf, v...)
		n++
		size += len(v)
		return true
	})
	if err != nil || n != want || size != want*recordSize {
		b.Fatalf("scan of %q found %d records of %d bytes (err %v), want %d", prefix, n, size, err, want)
	}
}

// scanBuf is where scanRecords copies values to (benchmarks run one at a
// time).
var scanBuf = make([]byte, 0, 1<<20)
