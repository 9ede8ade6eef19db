package web

import (
	"sync"
	"sync/atomic"
	"time"
)

// Why a message or a connection was refused, for the metrics, the
// overview and the logs.
type refusalReason int

const (
	refusedSchema refusalReason = iota // the bus's schema
	refusedRights                      // no credential, or not allowed
	refusedLimits                      // rate, size, connections, a full queue
	refusedOther                       // anything else (a store failure, a cut-off cluster …)
	refusedOrigin                      // a browser page of an origin not allowed
	refusedHost                        // a Host name not served (DNS rebinding)
	refusedTopic                       // a topic that is not one, or too long or deep
	refusalReasons
)

var refusalNames = [refusalReasons]string{"schema", "rights", "limits", "other", "origin", "host", "topic"}

func (r refusalReason) String() string { return refusalNames[r] }

// refusalCounts counts refusals by reason.
type refusalCounts [refusalReasons]atomic.Uint64

func (rc *refusalCounts) byName() map[string]uint64 {
	out := make(map[string]uint64, refusalReasons)
	for i := range rc {
		out[refusalNames[i]] = rc[i].Load()
	}
	return out
}

// refused counts a refusal and logs it, at most refusalLogBurst lines a
// second; the lines left out are counted in the next one. The message body
// is not logged unless Options.LogBodies asks.
func (s *Server) refused(reason refusalReason, aerr *apiError, remote string, body []byte) *apiError {
	s.refusals[reason].Add(1)
	if !s.refusalLog.allow() {
		return aerr
	}
	attrs := []any{"reason", reason.String(), "code", aerr.Code, "topic", aerr.Topic, "remote", remote, "error", aerr.Message}
	if n := s.refusalLog.takeSuppressed(); n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	if s.opts.LogBodies && body != nil {
		attrs = append(attrs, "body", string(body))
	}
	s.log.Warn("refused", attrs...)
	return aerr
}

// refusalLogBurst is how many refusal lines a second are logged.
const refusalLogBurst = 10

// logLimiter lets through a burst of lines per second and counts the rest.
type logLimiter struct {
	mu         sync.Mutex
	second     int64
	lines      int
	suppressed int
}

func (l *logLimiter) allow() bool {
	now := time.Now().Unix()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now != l.second {
		l.second, l.lines = now, 0
	}
	if l.lines >= refusalLogBurst {
		l.suppressed++
		return false
	}
	l.lines++
	return true
}

func (l *logLimiter) takeSuppressed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
