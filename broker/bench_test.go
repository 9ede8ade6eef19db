package broker

import (
	"sync/atomic"
	"testing"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Deliver(*Message) { c.n.Add(1) }

// BenchmarkFanout publishes one message to 1,000 subscribers of its topic
// and reports the broker's own cost per delivery (the web layer's writing
// is measured in web.BenchmarkFanoutWebSocket).
func BenchmarkFanout(b *testing.B) {
	br := New(Options{})
	const subs = 1000
	cs := make([]counter, subs)
	for i := range cs {
		br.Subscribe("/bench/topic", &cs[i])
	}
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		br.Publish(&Message{Topic: "/bench/topic", Payload: payload})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
}
