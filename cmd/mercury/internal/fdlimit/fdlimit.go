// Package fdlimit raises a process's open-files limit (RLIMIT_NOFILE) as
// far as it may go, and says how many connections that leaves room for:
// every TCP connection is one open file, so the limit, not memory, is
// usually the first ceiling a broker or a load generator meets.
package fdlimit

import "errors"

// ErrUnsupported is Raise's error on systems without RLIMIT_NOFILE.
var ErrUnsupported = errors.New("the open-files limit is not readable on this system")

// Limit is the open-files limit after Raise.
type Limit struct {
	Soft uint64 // what the process may open now
	Hard uint64 // what the soft limit may be raised to without privileges
	// Before is the soft limit Raise found. The Go runtime already raises
	// it at start (Go 1.19 and later), so it usually equals Soft.
	Before uint64
}

// Connections is how many connections the soft limit allows once reserved
// descriptors (listeners, the store's files, NATS, logs) are set aside;
// never below 0.
func (l Limit) Connections(reserved int) int {
	if l.Soft <= uint64(reserved) {
		return 0
	}
	return int(min(l.Soft-uint64(reserved), uint64(maxInt)))
}

const maxInt = int(^uint(0) >> 1)
