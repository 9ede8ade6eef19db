package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mercury-broker/mercury/broker"
)

// subprotocolEnvelope selects envelope mode, like ?envelope=1.
const subprotocolEnvelope = "mercury.v1"

// connOptions are a client's choices for one connection or request, from
// its query string (and, for envelope mode, its WebSocket subprotocol).
type connOptions struct {
	envelope  bool            // JSON envelopes, confirms, acks
	echo      bool            // bus: also receive own frames
	since     broker.Position // sub: replay what came after this position
	hasSince  bool            //
	prefetch  int             // pull: deliveries held at once
	ttl       time.Duration   // push/pull: lifetime of a queue this creates
	mustExist bool            // push/pull: refuse when the queue does not exist
	exclusive bool            // pull: single consumer
	takeover  bool            // pull: evict the current pullers
	remote    string          // the client's address, for the logs
	presence  bool            // sub: receive join and leave events
}

func parseConnOptions(r *http.Request, topic broker.Topic) (connOptions, *apiError) {
	q := r.URL.Query()
	o := connOptions{remote: r.RemoteAddr}
	bad := func(name, value, want string) (connOptions, *apiError) {
		return o, &apiError{Status: http.StatusBadRequest, Code: "query", Topic: string(topic),
			Message: fmt.Sprintf("%s=%q: want %s", name, value, want)}
	}
	flags := []struct {
		name string
		dst  *bool
	}{
		{"envelope", &o.envelope}, {"echo", &o.echo}, {"must_exist", &o.mustExist},
		{"exclusive", &o.exclusive}, {"takeover", &o.takeover}, {"presence", &o.presence},
	}
	for _, f := range flags {
		switch v := q.Get(f.name); v {
		case "", "0", "false":
		case "1", "true":
			*f.dst = true
		default:
			return bad(f.name, v, "1 or 0")
		}
	}
	if headerHasToken(r.Header, "Sec-WebSocket-Protocol", subprotocolEnvelope) {
		o.envelope = true
	}
	since := q.Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID") // Server-Sent Events resume
	}
	if since != "" {
		pos, err := broker.ParsePosition(since)
		if err != nil {
			return bad("since", since, "a sequence number, or EPOCH:SEQ")
		}
		o.since, o.hasSince = pos, true
	}
	if e := q.Get("epoch"); e != "" {
		switch {
		case !o.hasSince:
			return bad("epoch", e, "it with since: the epoch of that sequence number")
		case o.since.Epoch != "" && o.since.Epoch != e:
			return bad("epoch", e, "the epoch since names, "+o.since.Epoch)
		}
		o.since.Epoch = e
	}
	if v := q.Get("prefetch"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return bad("prefetch", v, "a whole number from 1 to 10000")
		}
		o.prefetch = n
	}
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return bad("ttl", v, "a positive duration such as 90s, 30m or 48h")
		}
		o.ttl = d
	}
	return o, nil
}
