package nats

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrServerTooOld refuses a NATS Server older than the backplane needs.
var ErrServerTooOld = errors.New("nats: the cluster needs NATS Server 2.9.0 or later")

// version is a NATS Server's release, as major, minor, patch.
type version [3]int

// The releases that matter to the backplane.
var (
	// v2_9 brought what the queues rest on: DiscardNewPerSubject (a full
	// queue refuses a push; an older server ignores the setting and drops
	// the queue's oldest message instead) and direct gets.
	v2_9 = version{2, 9, 0}
	// v2_10 takes several subject filters on one consumer; before it a
	// replay reads each filter with a consumer of its own.
	v2_10 = version{2, 10, 0}
	// v2_10_14 fixed a pull consumer delivering a message twice after a
	// pull request was lost (nats-server#5305; taken.go).
	v2_10_14 = version{2, 10, 14}
)

// parseVersion reads a server's version, "2.9.10" or "v2.11.0-RC.1".
func parseVersion(s string) (version, bool) {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return version{}, false
	}
	var v version
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return version{}, false
		}
		v[i] = n
	}
	return v, true
}

// atLeast reports whether v is release o or later.
func (v version) atLeast(o version) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] > o[i]
		}
	}
	return true
}

// adaptToServer checks the version of the server connected to and chooses
// what the backplane uses accordingly. A version it cannot read is taken
// for a current one: what such a server lacks still shows, and is worked
// around, when it refuses a request.
func (p *Backplane) adaptToServer() error {
	s := p.nc.ConnectedServerVersion()
	v, ok := parseVersion(s)
	if !ok {
		p.log.Warn("cluster: cannot read the NATS server's version; assuming a current one", "version", s)
		return nil
	}
	if !v.atLeast(v2_9) {
		return fmt.Errorf("%w; %s (%s) runs %s", ErrServerTooOld, p.nc.ConnectedUrlRedacted(), p.nc.ConnectedServerName(), s)
	}
	if !v.atLeast(v2_10) {
		p.oneFilter.Store(true)
	}
	if !v.atLeast(v2_10_14) {
		p.log.Warn("cluster: NATS Server before 2.10.14 may deliver a queued message twice after a pull request was lost (nats-server#5305): a broker drops the second copy when it holds or just settled the first, but not when another broker does; for pullers of one queue on several brokers, run 2.10.14 or later",
			"version", s)
	}
	return nil
}
