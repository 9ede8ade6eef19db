package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// benchOutput is what `mercury bench --json` and `mercury bench idle
// --json` print, and what `mercury bench table` reads: the runs, one per
// server (Mercury, then the baseline when asked).
type benchOutput struct {
	Runs []*loadReport `json:"runs,omitempty"`
	Idle []*idleReport `json:"idle,omitempty"`
}

// loadReport is the outcome of one load run against one server.
type loadReport struct {
	Label       string  `json:"label"`    // which server, e.g. mercury, baseline, nchan
	Scenario    string  `json:"scenario"` // a name for the load, to tell runs apart in a table
	URL         string  `json:"url"`
	Subscribers int     `json:"subscribers"`
	Publishers  int     `json:"publishers"`
	PublishVia  string  `json:"publish_via"` // ws or http
	Size        int     `json:"size"`
	Rate        float64 `json:"rate"` // per publisher per second; 0: as fast as possible
	DurationS   float64 `json:"duration_s"`
	Layout      string  `json:"layout"`
	Envelope    bool    `json:"envelope"`

	Published       int64   `json:"published"`
	PublishedPerSec float64 `json:"published_per_sec"`
	// Expected is how many deliveries the published messages call for:
	// published × subscribers on one topic.
	Expected        int64   `json:"expected"`
	Delivered       int64   `json:"delivered"`
	Loss            int64   `json:"loss"`       // expected − delivered, when positive
	Unexpected      int64   `json:"unexpected"` // delivered − expected, when positive (duplicates)
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	ElapsedS        float64 `json:"elapsed_s"` // from the first publish to the last delivery

	Latency latencyReport `json:"latency_ms"`
	Errors  errorReport   `json:"errors"`
	// Server is the server's cost while the load ran, given its pid.
	Server *costReport `json:"server,omitempty"`
	// Generator is the bench's own cost, on the same machine.
	Generator costReport `json:"generator"`
}

// latencyReport holds latencies in milliseconds, from the send time
// embedded in each message to its arrival.
type latencyReport struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func newLatencyReport(h *histogram) latencyReport {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencyReport{
		P50:  ms(h.quantile(0.50)),
		P90:  ms(h.quantile(0.90)),
		P99:  ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)),
		Max:  ms(h.maxValue()),
	}
}

// errorReport counts what went wrong.
type errorReport struct {
	Connect    int64  `json:"connect"`    // handshakes that failed
	Disconnect int64  `json:"disconnect"` // subscribers closed before the end
	Publish    int64  `json:"publish"`    // publishes refused or failed
	First      string `json:"first,omitempty"`
}

func (e errorReport) total() int64 { return e.Connect + e.Disconnect + e.Publish }

// costReport is what a process tree spent during a run.
type costReport struct {
	Pids       []int   `json:"pids,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Cores is CPU seconds per second of the run: 1.0 is one core busy.
	Cores float64 `json:"cores"`
	// CPUPerDeliveryUS is CPU microseconds per delivered message.
	CPUPerDeliveryUS float64 `json:"cpu_per_delivery_us"`
	// WritesPerDelivery is write system calls per delivered message
	// (below 1: frames batched into one write); absent when unreadable.
	WritesPerDelivery *float64 `json:"writes_per_delivery,omitempty"`
	RSSBytes          int64    `json:"rss_bytes"` // at the end
}

func newCostReport(pids []int, before, after procSample, elapsed time.Duration, delivered int64) costReport {
	c := costReport{Pids: pids, CPUSeconds: (after.cpu - before.cpu).Seconds(), RSSBytes: after.rss}
	if elapsed > 0 {
		c.Cores = c.CPUSeconds / elapsed.Seconds()
	}
	if delivered > 0 {
		c.CPUPerDeliveryUS = c.CPUSeconds * 1e6 / float64(delivered)
		if before.writes >= 0 && after.writes >= 0 {
			w := float64(after.writes-before.writes) / float64(delivered)
			c.WritesPerDelivery = &w
		}
	}
	return c
}

// idleReport is the memory idle subscribers cost one server.
type idleReport struct {
	Label         string `json:"label"`
	URL           string `json:"url"`
	Layout        string `json:"layout"`
	Conns         int    `json:"conns"`  // asked for
	Opened        int    `json:"opened"` // open at the measurement
	ConnectErrors int    `json:"connect_errors"`
	FirstError    string `json:"first_error,omitempty"`
	SourceAddrs   int    `json:"source_addrs,omitempty"` // addresses the bench dialed from
	// How long opening them took, handshakes included, and the rate.
	ConnectSeconds float64 `json:"connect_s,omitempty"`
	ConnectsPerSec float64 `json:"connects_per_sec,omitempty"`
	// Server memory, given its pid.
	ServerRSSBefore int64   `json:"server_rss_before,omitempty"`
	ServerRSSAfter  int64   `json:"server_rss_after,omitempty"`
	BytesPerConn    float64 `json:"bytes_per_conn,omitempty"`
	GeneratorRSS    int64   `json:"generator_rss"`
	// Broadcasts (layout one): each, and the median of each figure.
	Broadcasts []broadcastReport `json:"broadcasts,omitempty"`
	Broadcast  *broadcastReport  `json:"broadcast,omitempty"`
}

func writeJSON(w io.Writer, out benchOutput) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("failed to write the report: %w", err)
	}
	return nil
}
