package bench

import (
	"testing"
	"time"
)

func TestBroadcastReportRanksArrivals(t *testing.T) {
	lat := make([]time.Duration, 200)
	for i := range lat {
		lat[len(lat)-1-i] = time.Duration(i+1) * time.Millisecond // 1 to 200 ms, unsorted
	}
	got := newBroadcastReport(lat)
	want := broadcastReport{Received: 200, P50MS: 100, P99MS: 198, LastMS: 200}
	if got != want {
		t.Fatalf("report = %+v, want %+v", got, want)
	}
	if got := newBroadcastReport(nil); got != (broadcastReport{}) {
		t.Fatalf("report of nothing received = %+v", got)
	}
}

func TestMedianBroadcastTakesEachFiguresMedian(t *testing.T) {
	got := medianBroadcast([]broadcastReport{
		{Received: 10, P50MS: 5, P99MS: 9, LastMS: 30},
		{Received: 9, P50MS: 1, P99MS: 20, LastMS: 21},
		{Received: 10, P50MS: 3, P99MS: 10, LastMS: 10},
	})
	want := broadcastReport{Received: 10, P50MS: 3, P99MS: 10, LastMS: 21}
	if *got != want {
		t.Fatalf("median = %+v, want %+v", *got, want)
	}
	if medianBroadcast(nil) != nil {
		t.Fatal("median of no broadcasts is not nil")
	}
}
