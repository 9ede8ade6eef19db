package nats

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// BenchmarkClusterInterest measures what share of the published messages
// each broker's feed decodes (mercury_cluster_messages_received_total)
// with interest feeds, and with the whole stream in the same run: three
// brokers, 3,000 topics in 30 groups of 100 (/tenantGG/roomRRR), each
// group's subscribers on one broker (1,000 topics per broker, one
// subscriber each), 30,000 messages, 10 per topic, published from the
// three brokers in turn. Every subscriber must get exactly its 10
// messages, in order.
//
//	go test -run XXX -bench ClusterInterest -benchtime 1x ./bus/nats/
func BenchmarkClusterInterest(b *testing.B) {
	c := natstest.Start(b)
	var interest, whole []float64
	for b.Loop() {
		whole = interestScenario(b, c, true)
		interest = interestScenario(b, c, false)
	}
	b.Logf("share of the 30,000 messages each broker decoded: interest feeds %.3f, whole stream %.3f", interest, whole)
	b.ReportMetric(100*slices.Max(interest), "interest-max-%")
	b.ReportMetric(100*slices.Min(whole), "whole-min-%")
}

// interestScenario runs the benchmark's scenario once on brokers of a new
// cluster name, and returns the share of the messages each one decoded.
func interestScenario(b *testing.B, c *natstest.Cluster, wholeStream bool) []float64 {
	const brokers, groups, perGroup, perTopic = 3, 30, 100, 10
	name := clusterName()
	var nodes []*node
	for i := range brokers {
		urls := c.URLs()
		urls = append(urls[i%len(urls):], urls[:i%len(urls)]...)
		bp, err := Connect(Options{URLs: urls, Name: name, Logger: testLogger(), Timeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if wholeStream {
			bp.oneFilter.Store(true) // as on a server before 2.10
		}
		br, err := broker.Open(broker.Options{Backplane: bp, Logger: testLogger()})
		if err != nil {
			bp.Close()
			b.Fatal(err)
		}
		nodes = append(nodes, &node{b: br, bp: bp})
	}
	defer func() {
		for _, n := range nodes {
			n.b.Close()
			n.bp.Close()
		}
	}()

	type sub struct {
		topic broker.Topic
		rec   *recorder
	}
	var subs []sub
	for g := range groups {
		for r := range perGroup {
			subs = append(subs, sub{broker.Topic(fmt.Sprintf("/tenant%02d/room%03d", g, r)), &recorder{}})
		}
	}
	// Clients connect together: subscribe from several goroutines.
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				g := i / perGroup
				nodes[g%brokers].b.Subscribe(subs[i].topic, subs[i].rec)
			}
		})
	}
	for i := range subs {
		work <- i
	}
	close(work)
	wg.Wait()
	subscribed := time.Since(start)

	start = time.Now()
	var failed sync.Once
	var pubErr error
	inFlight := make(chan struct{}, 1024)
	var done sync.WaitGroup
	for k := range perTopic {
		for i, s := range subs {
			inFlight <- struct{}{}
			done.Add(1)
			m := &broker.Message{Topic: s.topic, Payload: fmt.Appendf(nil, "%d", k)}
			nodes[(i+k)%brokers].b.PublishAsync(m, func(err error) {
				if err != nil {
					failed.Do(func() { pubErr = err })
				}
				<-inFlight
				done.Done()
			})
		}
	}
	done.Wait()
	if pubErr != nil {
		b.Fatal(pubErr)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, s := range subs {
		for len(s.rec.got()) < perTopic && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	published := time.Since(start)
	time.Sleep(200 * time.Millisecond) // for what should not come
	for _, s := range subs {
		got := s.rec.got()
		if len(got) != perTopic {
			b.Fatalf("%s: %d messages, want %d", s.topic, len(got), perTopic)
		}
		for k, m := range got {
			if m.Topic != s.topic || string(m.Payload) != fmt.Sprint(k) || k > 0 && m.Seq <= got[k-1].Seq {
				b.Fatalf("%s: message %d is %s %q seq %d", s.topic, k, m.Topic, m.Payload, m.Seq)
			}
		}
	}
	total := float64(len(subs) * perTopic)
	var shares []float64
	for _, n := range nodes {
		shares = append(shares, float64(n.bp.MessagesReceived())/total)
	}
	b.Logf("whole stream %v: subscribed in %v, %d messages delivered in %v, decoded per broker %.3f",
		wholeStream, subscribed.Round(time.Millisecond), int(total), published.Round(time.Millisecond), shares)
	return shares
}
