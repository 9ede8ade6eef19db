package metrics

import (
	"testing"
	"time"
)

// BenchmarkObserveWrite is what a write system call pays for the
// publish-to-write histogram.
func BenchmarkObserveWrite(b *testing.B) {
	m := New()
	accepted := time.Now().UnixNano()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveWrite(accepted, now)
	}
}

func TestObserveWriteSkipsFramesOfOurOwn(t *testing.T) {
	m := New()
	now := time.Now()
	m.ObserveWrite(0, now)
	m.ObserveWrite(now.Add(-time.Millisecond).UnixNano(), now)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "mercury_publish_to_write_seconds" {
			h := f.Metric[0].Histogram
			if h.GetSampleCount() != 1 || h.GetSampleSum() < 0.0009 || h.GetSampleSum() > 0.0011 {
				t.Errorf("count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Fatal("no histogram")
}
