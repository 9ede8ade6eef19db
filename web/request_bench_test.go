package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// BenchmarkRequestReply measures request/reply round trips on one broker:
// a POST /req answered by one agent on a WebSocket, client and server on
// the same machine. It reports round trips per second and the p99.
func BenchmarkRequestReply(b *testing.B) {
	ts := startServer(b, Options{})
	agent, err := client.Dial(context.Background(), ts.ws+"/sub/livesys/42?envelope=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer agent.CloseNow()
	go func() {
		for {
			f, err := agent.Read(context.Background())
			if err != nil {
				return
			}
			var req struct {
				Reply string `json:"reply"`
			}
			json.Unmarshal(f.Data, &req)
			agent.WriteText(context.Background(), fmt.Sprintf(`{"reply":%q,"data":{"up":5}}`, req.Reply))
		}
	}()
	ts.waitSubscribed(b, 1)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	url := ts.http.URL + "/req/livesys/42?timeout=5s"
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		resp, err := client.Post(context.Background(), hc, url, "", []byte(`"uptime?"`), nil)
		if err != nil || resp.Status != 200 {
			b.Fatalf("%v %v", err, resp)
		}
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/took.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
