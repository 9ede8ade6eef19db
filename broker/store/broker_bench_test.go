package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// benchBroker returns a broker with the bus /b, durable or not, and the
// store to close (nil when not durable).
func benchBroker(b *testing.B, durable bool) (*broker.Broker, *Durable) {
	b.Helper()
	ps, err := broker.NewPolicies([]broker.Policy{{Bus: "/b", Durable: durable, History: broker.History{Messages: 1 << 20}}})
	if err != nil {
		b.Fatal(err)
	}
	opts := broker.Options{Policies: ps}
	var d *Durable
	if durable {
		d = openDurableB(b, b.TempDir())
		opts.Store = d
	}
	br, err := broker.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	return br, d
}

func openDurableB(b *testing.B, dir string) *Durable {
	d, err := OpenDurable(dir)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkBrokerPublish measures confirmed publishing through the
// broker: in memory, and on a durable bus (fsync before the confirm), with
// 1 and 50 concurrent publishers. It reports confirms per second and the
// confirm latency p50 and p99.
func BenchmarkBrokerPublish(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, publishers := range []int{1, 50} {
			name := fmt.Sprintf("memory/publishers=%d", publishers)
			if durable {
				name = fmt.Sprintf("durable/publishers=%d", publishers)
			}
			b.Run(name, func(b *testing.B) {
				br, d := benchBroker(b, durable)
				defer func() {
					br.Close()
					if d != nil {
						d.Close()
					}
				}()
				payload := make([]byte, 200)
				lat := make([][]time.Duration, publishers)
				var wg sync.WaitGroup
				b.ResetTimer()
				for p := range publishers {
					wg.Go(func() {
						for i := p; i < b.N; i += publishers {
							start := time.Now()
							if err := br.Publish(&broker.Message{Topic: "/b/x", Payload: payload}); err != nil {
								b.Error(err)
								return
							}
							lat[p] = append(lat[p], time.Since(start))
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "confirms/s")
				b.ReportMetric(float64(all[len(all)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
			})
		}
	}
}

type sink struct{}

func (sink) Deliver(*broker.Message) {}

// BenchmarkBrokerReplay measures replay: a subscriber's backlog of 100,000
// kept messages (memory, the same for a durable bus), and a restart that
// loads 100,000 messages of a durable bus from disk.
func BenchmarkBrokerReplay(b *testing.B) {
	const n = 100000
	b.Run("subscribe-since", func(b *testing.B) {
		br, d := benchBroker(b, false)
		defer br.Close()
		_ = d
		for range n {
			br.Publish(&broker.Message{Topic: "/b/x", Payload: make([]byte, 200)})
		}
		b.ResetTimer()
		for range b.N {
			backlog, _, unsub := br.SubscribeSince("/b", sink{}, 0)
			if len(backlog) != n {
				b.Fatalf("backlog %d", len(backlog))
			}
			unsub()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("restart-load", func(b *testing.B) {
		dir := b.TempDir()
		d := openDurableB(b, dir)
		ps, _ := broker.NewPolicies([]broker.Policy{{Bus: "/b", Durable: true, History: broker.History{Messages: 1 << 20}}})
		br, _ := broker.Open(broker.Options{Policies: ps, Store: d})
		var wg sync.WaitGroup
		for p := range 50 {
			wg.Go(func() {
				for i := p; i < n; i += 50 {
					br.Publish(&broker.Message{Topic: "/b/x", Payload: make([]byte, 200)})
				}
			})
		}
		wg.Wait()
		br.Close()
		d.Close()
		b.ResetTimer()
		for range b.N {
			d := openDurableB(b, dir)
			br, err := broker.Open(broker.Options{Policies: ps, Store: d})
			if err != nil {
				b.Fatal(err)
			}
			br.Close()
			d.Close()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
