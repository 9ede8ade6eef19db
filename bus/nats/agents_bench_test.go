package nats

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// answering is a responder that answers every request at once.
type answering struct{ b *broker.Broker }

func (a answering) Deliver(*broker.Message) {}

func (a answering) DeliverRequest(_ *broker.Message, id string) bool {
	go a.b.Reply(id, broker.Answer{Payload: []byte(`{"up":5}`)})
	return true
}

// BenchmarkRequestAcrossBrokers measures request/reply round trips from
// one broker to an agent on another, through embedded NATS, and reports
// round trips per second and the p99.
func BenchmarkRequestAcrossBrokers(b *testing.B) {
	c := natstest.Start(b)
	name := clusterName()
	urls := c.URLs()
	one, two := agentNode(b, name, urls), agentNode(b, name, append(urls[1:], urls[0]))
	defer two.b.Subscribe("/livesys/42", answering{two.b})()
	// Wait until the brokers know each other.
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := one.b.Request(&broker.Message{Topic: "/livesys/42", Payload: []byte("x")}, time.Second)
		if err == nil {
			p.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the brokers never met")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		p, err := one.b.Request(&broker.Message{Topic: "/livesys/42", Payload: []byte(`"uptime?"`)}, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(context.Background(), false); err != nil {
			b.Fatal(err)
		}
		p.Close()
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/took.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
