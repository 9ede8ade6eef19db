package nats

import (
	"testing"
	"time"

	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// TestConnectOverSlowLink: on a link where every answer takes a while,
// each request to NATS has its full timeout: setting up the streams and
// buckets, a dozen requests, is not bound by one.
func TestConnectOverSlowLink(t *testing.T) {
	c := cluster(t)
	proxy := natstest.NewProxy(t, c.URL(0))
	proxy.SetDelay(200 * time.Millisecond)
	bp, err := Connect(Options{URLs: []string{proxy.URL()}, Name: clusterName(), Logger: testLogger(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("connect over a slow link: %v", err)
	}
	bp.Close()
}
