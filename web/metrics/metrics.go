// Package metrics exposes a broker to Prometheus. What the broker and the
// server count already (connections, traffic per bus, queues, refusals) is
// read when Prometheus scrapes, through a Source, so the hot path pays
// nothing for it; only latencies are observed as they happen, into
// histograms.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mercury-broker/mercury/broker"
)

// Metrics is one broker's registry: its own, not Prometheus's global one,
// so that several servers in one process (tests) do not collide.
type Metrics struct {
	reg *prometheus.Registry

	// PublishToWrite observes, per write system call, the time from the
	// broker accepting the oldest message in it to the write.
	PublishToWrite prometheus.Histogram
	// StoreSync observes each synced write of the durable store.
	StoreSync prometheus.Histogram
}

// New returns a registry with the Go runtime and process collectors and
// the latency histograms.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		PublishToWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mercury_publish_to_write_seconds",
			Help:    "Time from the broker accepting a message to its WebSocket write, observed once per write system call (for the oldest message in it).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs … 3.3s
		}),
		StoreSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mercury_store_sync_seconds",
			Help:    "Duration of one synced write (write and fsync) of the durable store, shared by every confirm in its group.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.PublishToWrite,
		m.StoreSync,
	)
	return m
}

// ObserveWrite records one write that held a message accepted at
// accepted (Unix nanoseconds; 0: none).
func (m *Metrics) ObserveWrite(accepted int64, now time.Time) {
	if accepted == 0 {
		return
	}
	m.PublishToWrite.Observe(float64(now.UnixNano()-accepted) / 1e9)
}

// ObserveSync records a synced write of the store (store.Durable.OnSync).
func (m *Metrics) ObserveSync(took time.Duration, _ int) { m.StoreSync.Observe(took.Seconds()) }

// Gauge registers a gauge read from f at each scrape.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Counter registers a counter read from f at each scrape.
func (m *Metrics) Counter(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Watch registers src: its figures are read at each scrape.
func (m *Metrics) Watch(src Source) { m.reg.MustRegister(&sourceCollector{src: src}) }

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Snapshot is what a Source reports at a scrape.
type Snapshot struct {
	Connections   map[string]int // open connections by pattern (sub, pub, bus, push, pull, sse)
	Subscriptions int
	Traffic       []broker.BusStats
	Queues        []broker.QueueStats
	SlowConsumers uint64
	Refusals      map[string]uint64 // by reason: schema, rights, limits, other
	MemoryHeld    int64             // bytes held for clients, against MemoryLimit
	MemoryLimit   int64             // the broker's max_memory
}

// A Source reports the counts it keeps.
type Source interface {
	MetricsSnapshot() Snapshot
}

var (
	descConnections   = prometheus.NewDesc("mercury_connections", "Open connections by pattern (sse: event streams).", []string{"pattern"}, nil)
	descSubscriptions = prometheus.NewDesc("mercury_subscriptions", "Subscriptions to topics (WebSocket and event streams).", nil, nil)
	descMessagesIn    = prometheus.NewDesc("mercury_messages_in_total", "Messages accepted, by bus (\"\" for topics under no bus).", []string{"bus"}, nil)
	descMessagesOut   = prometheus.NewDesc("mercury_messages_out_total", "Deliveries to subscribers and bus peers, by bus (a message to three subscribers counts three).", []string{"bus"}, nil)
	descBytesIn       = prometheus.NewDesc("mercury_bytes_in_total", "Payload bytes accepted, by bus.", []string{"bus"}, nil)
	descBytesOut      = prometheus.NewDesc("mercury_bytes_out_total", "Payload bytes delivered to subscribers and bus peers, by bus.", []string{"bus"}, nil)
	descSlow          = prometheus.NewDesc("mercury_slow_consumer_closes_total", "Connections closed because they did not keep up.", nil, nil)
	descRefusals      = prometheus.NewDesc("mercury_refusals_total", "Messages and connections refused, by reason (schema, rights, limits, origin, host, topic, other).", []string{"reason"}, nil)
	descQueueDepth    = prometheus.NewDesc("mercury_queue_depth", "Messages waiting in a work queue that no puller holds.", []string{"queue"}, nil)
	descQueueInFlight = prometheus.NewDesc("mercury_queue_in_flight", "Messages offered to a puller and not yet settled.", []string{"queue"}, nil)
	descQueueDead     = prometheus.NewDesc("mercury_queue_dead_letters", "Dead letters of a work queue.", []string{"queue"}, nil)
	descQueuePullers  = prometheus.NewDesc("mercury_queue_pullers", "Pullers attached to a work queue.", []string{"queue"}, nil)
	descQueueBytes    = prometheus.NewDesc("mercury_queue_bytes", "Bytes a work queue holds in memory (waiting, in flight and dead letters; payload plus a small overhead each).", []string{"queue"}, nil)
	descQueueWaiting  = prometheus.NewDesc("mercury_queue_waiting_bytes", "Bytes of the messages waiting in a work queue, counted against its queue.max_bytes.", []string{"queue"}, nil)
	descMemoryHeld    = prometheus.NewDesc("mercury_memory_held_bytes", "Bytes the broker holds for clients (queues and in-memory history), counted against max_memory.", nil, nil)
	descMemoryLimit   = prometheus.NewDesc("mercury_memory_limit_bytes", "The broker's memory budget for what it holds for clients (max_memory).", nil, nil)
)

type sourceCollector struct{ src Source }

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descSubscriptions, descMessagesIn, descMessagesOut,
		descBytesIn, descBytesOut, descSlow, descRefusals, descQueueDepth, descQueueInFlight, descQueueDead, descQueuePullers,
		descQueueBytes, descQueueWaiting, descMemoryHeld, descMemoryLimit} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.MetricsSnapshot()
	for p, n := range s.Connections {
		ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(n), p)
	}
	ch <- prometheus.MustNewConstMetric(descSubscriptions, prometheus.GaugeValue, float64(s.Subscriptions))
	for _, t := range s.Traffic {
		bus := string(t.Bus)
		ch <- prometheus.MustNewConstMetric(descMessagesIn, prometheus.CounterValue, float64(t.MessagesIn), bus)
		ch <- prometheus.MustNewConstMetric(descMessagesOut, prometheus.CounterValue, float64(t.MessagesOut), bus)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(t.BytesIn), bus)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(t.BytesOut), bus)
	}
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(s.SlowConsumers))
	for r, n := range s.Refusals {
		ch <- prometheus.MustNewConstMetric(descRefusals, prometheus.CounterValue, float64(n), r)
	}
	for _, q := range s.Queues {
		queue := string(q.Topic)
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(q.Waiting), queue)
		ch <- prometheus.MustNewConstMetric(descQueueInFlight, prometheus.GaugeValue, float64(q.InFlight), queue)
		ch <- prometheus.MustNewConstMetric(descQueueDead, prometheus.GaugeValue, float64(q.Dead), queue)
		ch <- prometheus.MustNewConstMetric(descQueuePullers, prometheus.GaugeValue, float64(q.Pullers), queue)
		ch <- prometheus.MustNewConstMetric(descQueueBytes, prometheus.GaugeValue, float64(q.Bytes), queue)
		ch <- prometheus.MustNewConstMetric(descQueueWaiting, prometheus.GaugeValue, float64(q.WaitingBytes), queue)
	}
	ch <- prometheus.MustNewConstMetric(descMemoryHeld, prometheus.GaugeValue, float64(s.MemoryHeld))
	ch <- prometheus.MustNewConstMetric(descMemoryLimit, prometheus.GaugeValue, float64(s.MemoryLimit))
}
