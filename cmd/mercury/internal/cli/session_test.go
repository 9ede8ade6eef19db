package cli

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

func TestBackoff(t *testing.T) {
	var b backoff
	prev := time.Duration(0)
	for i := range 20 {
		d := b.wait()
		if d < time.Duration(0.8*float64(backoffFirst)) || d > time.Duration(1.2*float64(backoffMax)) {
			t.Fatalf("wait %d = %s, out of bounds", i, d)
		}
		if i < 5 && d < prev/2 {
			t.Fatalf("wait %d = %s after %s: not growing", i, d, prev)
		}
		prev = d
	}
	if prev < time.Duration(0.8*float64(backoffMax)) {
		t.Fatalf("after 20 attempts the wait is %s, want about %s", prev, backoffMax)
	}
	b.reset()
	if d := b.wait(); d > time.Duration(1.2*float64(backoffFirst)) {
		t.Fatalf("after reset: %s", d)
	}
}

func TestClosedFailure(t *testing.T) {
	for _, tc := range []struct {
		err     error
		refused bool
	}{
		{errors.New("EOF"), false},
		{websocket.CloseError{Code: 1001, Reason: "going away"}, false},
		{websocket.CloseError{Code: 1008, Reason: "slow consumer"}, false},
		{websocket.CloseError{Code: 1009, Reason: "message too big"}, true},
		{websocket.CloseError{Code: 4409, Reason: "queue has an exclusive puller"}, true},
		{websocket.CloseError{Code: 4404, Reason: "no such queue"}, true},
	} {
		why, refused := closedFailure(tc.err)
		if refused != tc.refused || why == "" {
			t.Errorf("%v: %q refused=%v, want refused=%v", tc.err, why, refused, tc.refused)
		}
	}
}

func TestRefusalIsPlain(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{426, "426 Upgrade Required: /sub/… is a WebSocket endpoint; connect with a WebSocket client\n", "426 Upgrade Required: /sub/… is a WebSocket endpoint; connect with a WebSocket client"},
		{404, "404 page not found\n", "404 Not Found: page not found"},
		{401, "Origin check failed\n", "401 Unauthorized: Origin check failed"},
		{403, `{"error":{"code":"forbidden","topic":"/x","message":"the token does not allow sub on /x"}}`, "403 Forbidden: the token does not allow sub on /x"},
		{503, `{"error":{"code":"limit","message":"too many connections: the limit is 1"}}`, "503 Service Unavailable: too many connections: the limit is 1"},
		{502, "", "502 Bad Gateway"},
		{404, "Not Found", "404 Not Found"},
	} {
		if got := refusal(tc.status, tc.body, client.ParseError([]byte(tc.body))); got != tc.want {
			t.Errorf("refusal(%d, %q) = %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}
