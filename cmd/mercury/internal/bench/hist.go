package bench

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets: exact below
// 2^histSubBits nanoseconds, then 2^(histSubBits-1) buckets per power of
// two, so a bucket is never wider than 1/64 of its values (under 1.6%
// error) whatever the scale, from microseconds to minutes. Recording is a
// few instructions and never allocates, so each subscriber keeps its own
// and they are merged at the end. A histogram is not safe for concurrent
// use.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    uint64
	max    uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // values below are exact
	histHalf    = histSub / 2      // buckets per power of two above
	histShifts  = 64 - histSubBits // powers of two above histSub
	histBuckets = histSub + histShifts*histHalf
)

// bucketOf returns the bucket of v.
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // ≥ 1
	m := v >> shift                      // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(m-histHalf)
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	shift := (i-histSub)/histHalf + 1
	m := uint64((i-histSub)%histHalf + histHalf)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// record adds one duration; negative ones count as zero.
func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
}

// merge adds o's values to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// count returns the number of values recorded.
func (h *histogram) count() uint64 { return h.n }

// quantile returns the value at quantile q (0 < q ≤ 1): the upper bound of
// the bucket holding the value of rank ceil(q·n), so it may overstate by
// the bucket's width but never understate, and never exceeds the largest
// value recorded. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// maxValue returns the largest value recorded.
func (h *histogram) maxValue() time.Duration { return time.Duration(h.max) }
