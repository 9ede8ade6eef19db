package broker

import (
	"sort"
	"strings"
	"time"
)

// Traffic statistics, per topic and per bus, for the admin API and the
// metrics. They are kept under pubMu, which every accepted message holds
// anyway: a publish adds two map lookups and no allocation (but the first
// time a topic is seen).

// rateWindow is the span a topic's rate is averaged over, in seconds.
const rateWindow = 10

// topicIdle is how long a topic without subscribers stays in the
// statistics after its last message.
const topicIdle = time.Minute

type topicCounter struct {
	messages uint64
	lastSeq  uint64
	last     time.Time
	// buckets[s%rateWindow] counts the messages of second s.
	buckets [rateWindow]struct {
		sec int64
		n   uint32
	}
}

func (c *topicCounter) add(m *Message) {
	c.messages++
	c.lastSeq = m.Seq
	c.last = m.Time
	sec := m.Time.Unix()
	b := &c.buckets[sec%rateWindow]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
}

// rate is the messages per second over the last rateWindow whole seconds.
func (c *topicCounter) rate(now time.Time) float64 {
	sec := now.Unix()
	var n uint32
	for _, b := range c.buckets {
		if b.sec < sec && b.sec >= sec-rateWindow {
			n += b.n
		}
	}
	return float64(n) / rateWindow
}

// BusStats counts the traffic of one bus ("" for topics under no bus).
// Out counts deliveries handed to subscribers and bus peers (a message to
// a topic with three subscribers counts three); queued messages count in
// when pushed.
type BusStats struct {
	Bus         Topic  `json:"bus"`
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
}

// TopicStats describes one topic: its subscribers (on exactly this topic)
// and the messages accepted on it.
type TopicStats struct {
	Topic       Topic   `json:"topic"`
	Subscribers int     `json:"subscribers"`
	Messages    uint64  `json:"messages"`
	InPerSecond float64 `json:"in_per_second"`
	LastSeq     uint64  `json:"last_seq"`
}

type trafficStats struct {
	topics  map[Topic]*topicCounter
	buses   map[Topic]*BusStats
	sweepAt int // sweep idle topics when the map grows to this size
}

// count records m, accepted on bus and handed to delivered receivers;
// pubMu is held.
func (b *Broker) count(bus Topic, m *Message, delivered int) {
	st := &b.stats
	c := st.topics[m.Topic]
	if c == nil {
		if st.topics == nil {
			st.topics, st.buses, st.sweepAt = make(map[Topic]*topicCounter), make(map[Topic]*BusStats), 1024
		}
		if len(st.topics) >= st.sweepAt {
			st.sweep(m.Time)
		}
		c = &topicCounter{}
		st.topics[m.Topic] = c
	}
	c.add(m)
	bs := st.buses[bus]
	if bs == nil {
		bs = &BusStats{Bus: bus}
		st.buses[bus] = bs
	}
	size := uint64(len(m.Payload))
	bs.MessagesIn++
	bs.BytesIn += size
	bs.MessagesOut += uint64(delivered)
	bs.BytesOut += uint64(delivered) * size
}

// sweep forgets the topics quiet for topicIdle, so that a stream of
// one-off topics does not grow the statistics without bound.
func (st *trafficStats) sweep(now time.Time) {
	for t, c := range st.topics {
		if now.Sub(c.last) > topicIdle {
			delete(st.topics, t)
		}
	}
	st.sweepAt = max(1024, 2*len(st.topics))
}

// TrafficByBus returns the traffic counters of every bus that had any,
// sorted by bus.
func (b *Broker) TrafficByBus() []BusStats {
	b.pubMu.Lock()
	out := make([]BusStats, 0, len(b.stats.buses))
	for _, bs := range b.stats.buses {
		out = append(out, *bs)
	}
	b.pubMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Bus < out[j].Bus })
	return out
}

// TopicStats returns the topics that have subscribers or had a message in
// the last minute, at or below prefix ("" for all), sorted by topic.
func (b *Broker) TopicStats(prefix Topic) []TopicStats {
	under := func(t Topic) bool {
		return prefix == "" || t == prefix || strings.HasPrefix(string(t), string(prefix)+"/")
	}
	byTopic := make(map[Topic]*TopicStats)
	b.subs.Walk(func(path string, values []Receiver) {
		if t := Topic(path); under(t) {
			byTopic[t] = &TopicStats{Topic: t, Subscribers: len(values)}
		}
	})
	now := b.opts.Now()
	b.pubMu.Lock()
	b.stats.sweep(now)
	for t, c := range b.stats.topics {
		if !under(t) {
			continue
		}
		ts := byTopic[t]
		if ts == nil {
			ts = &TopicStats{Topic: t}
			byTopic[t] = ts
		}
		ts.Messages, ts.LastSeq, ts.InPerSecond = c.messages, c.lastSeq, c.rate(now)
	}
	b.pubMu.Unlock()
	out := make([]TopicStats, 0, len(byTopic))
	for _, ts := range byTopic {
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}
