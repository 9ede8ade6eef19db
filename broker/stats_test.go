package broker

import (
	"testing"
	"time"
)

func TestTrafficStatistics(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pols, err := NewPolicies([]Policy{{Bus: "/livesys"}})
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Policies: pols, Now: func() time.Time { return now }})
	var a, c, d inbox
	b.Subscribe("/livesys", &a)
	b.Subscribe("/livesys/42", &c)
	b.Subscribe("/livesys/42", &d)
	for range 20 {
		if err := b.Publish(msg("/livesys/42", "hello")); err != nil { // 3 receivers
			t.Fatal(err)
		}
	}
	if err := b.Publish(msg("/other", "x")); err != nil { // nobody
		t.Fatal(err)
	}
	now = now.Add(time.Second) // the rate counts whole seconds gone by

	topics := b.TopicStats("")
	want := []TopicStats{
		{Topic: "/livesys", Subscribers: 1},
		{Topic: "/livesys/42", Subscribers: 2, Messages: 20, InPerSecond: 2, LastSeq: 20},
		{Topic: "/other", Messages: 1, InPerSecond: 0.1, LastSeq: 21},
	}
	if len(topics) != len(want) {
		t.Fatalf("topics = %+v", topics)
	}
	for i := range want {
		if topics[i] != want[i] {
			t.Errorf("topic %d = %+v, want %+v", i, topics[i], want[i])
		}
	}
	if got := b.TopicStats("/livesys"); len(got) != 2 || got[1].Topic != "/livesys/42" {
		t.Errorf("under /livesys: %+v", got)
	}
	if got := b.TopicStats("/live"); len(got) != 0 {
		t.Errorf("a prefix matches whole segments only: %+v", got)
	}

	buses := b.TrafficByBus()
	wantBuses := []BusStats{
		{Bus: "", MessagesIn: 1, MessagesOut: 0, BytesIn: 1},
		{Bus: "/livesys", MessagesIn: 20, MessagesOut: 60, BytesIn: 100, BytesOut: 300},
	}
	if len(buses) != 2 || buses[0] != wantBuses[0] || buses[1] != wantBuses[1] {
		t.Errorf("buses = %+v, want %+v", buses, wantBuses)
	}

	// A quiet topic without subscribers is forgotten after a minute.
	now = now.Add(2 * time.Minute)
	if got := b.TopicStats("/other"); len(got) != 0 {
		t.Errorf("a quiet topic stays: %+v", got)
	}
}
