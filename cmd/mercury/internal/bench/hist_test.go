package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<20 + 1, 123456789, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for range 10000 {
		values = append(values, rand.Uint64()>>rand.IntN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0,%d)", v, i, histBuckets)
		}
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d,%d]", v, i, lo, hi)
		}
		if width := hi - lo; width > v/64 {
			t.Fatalf("bucket %d = [%d,%d] is wider than 1/64 of %d", i, lo, hi, v)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := bucketBounds(0)
	for i := 1; i < histBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ended at %d", i, lo, i-1, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d,%d] does not map back", i, lo, hi)
		}
		prevHi = hi
	}
	if prevHi != ^uint64(0) {
		t.Fatalf("the last bucket ends at %d", prevHi)
	}
}

// TestQuantiles checks each quantile against the exact value from the
// sorted data: never below it, and at most one bucket (1/64) above.
func TestQuantiles(t *testing.T) {
	var h histogram
	var all []time.Duration
	for range 100000 {
		// Latencies from 10µs to about 1s, skewed like real ones.
		d := time.Duration(10000 * (1 + rand.ExpFloat64()*rand.ExpFloat64()*50))
		h.record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all))+0.5)-1]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/64 {
			t.Errorf("quantile(%g) = %v, exact %v", q, got, exact)
		}
	}
	if h.maxValue() != all[len(all)-1] {
		t.Errorf("max = %v, want %v", h.maxValue(), all[len(all)-1])
	}
	if h.count() != uint64(len(all)) {
		t.Errorf("count = %d", h.count())
	}
}

func TestQuantileSmallAndExact(t *testing.T) {
	var h histogram
	if h.quantile(0.99) != 0 || h.maxValue() != 0 {
		t.Fatal("an empty histogram reports values")
	}
	for _, v := range []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		h.record(v)
	}
	for q, want := range map[float64]time.Duration{0.1: 1, 0.5: 5, 0.9: 9, 0.99: 10, 1: 10} {
		if got := h.quantile(q); got != want {
			t.Errorf("quantile(%g) = %v, want %v", q, got, want)
		}
	}
	// One large value: every quantile is clipped to it, not to its bucket's end.
	var one histogram
	one.record(1234567 * time.Nanosecond)
	if got := one.quantile(0.5); got != 1234567 {
		t.Errorf("quantile of one value = %v", got)
	}
	var neg histogram
	neg.record(-5)
	if neg.quantile(1) != 0 {
		t.Errorf("a negative duration counts as %v", neg.quantile(1))
	}
}

func TestMerge(t *testing.T) {
	var a, b, all histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{})
	if m != all {
		t.Fatalf("merged: n=%d min=%d max=%d; want n=%d min=%d max=%d", m.n, m.min, m.max, all.n, all.min, all.max)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	d := 1234567 * time.Nanosecond
	for b.Loop() {
		h.record(d)
		d += 7919
	}
}
