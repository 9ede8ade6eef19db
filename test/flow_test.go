package test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"
)

// A raw client writes its frames as fast as the socket takes them, and
// reads nothing back: on the defaults every message reaches the
// subscriber; with a rate, every one still does, paced.
func TestRawBurstIsAllDelivered(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		n    int
	}{
		{"defaults", nil, 5000},
		{"publish rate 500, burst 100", []string{"--publish-rate", "500", "--publish-burst", "100"}, 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, c.args...)
			sub := dial(t, b.WS+"/sub/burst", nil)
			pub := rawDial(t, b.Listen, "/pub/burst")
			var all bytes.Buffer
			for i := range c.n {
				all.Write(frame(true, opText, []byte(strconv.Itoa(i))))
			}
			start := time.Now()
			go pub.Write(all.Bytes())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := range c.n {
				f, err := sub.Read(ctx)
				if err != nil {
					t.Fatalf("after %d of %d messages: %v", i, c.n, err)
				}
				if string(f.Data) != strconv.Itoa(i) {
					t.Fatalf("message %d: got %q", i, f.Data)
				}
			}
			if c.args != nil && time.Since(start) < 3*time.Second {
				t.Fatalf("%d messages at 500/s (burst 100) took %v", c.n, time.Since(start))
			}
		})
	}
}
