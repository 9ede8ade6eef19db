package bench

import (
	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/cmd/mercury/internal/fdlimit"
)

// benchFileReserve is the descriptors the bench needs besides its
// connections: stdio, /proc reads, the runtime's poller, a profile.
const benchFileReserve = 32

// raiseFileLimit raises the bench's open-files limit to the hard limit
// and refuses, before dialing anything, a run of more connections than
// that allows.
func raiseFileLimit(conns int) error {
	l, err := fdlimit.Raise()
	if err != nil {
		return nil // unknown here: the dials report their own errors
	}
	if need := conns + benchFileReserve; uint64(need) > l.Soft {
		return command.UsageError("%d connections need about %d open files, and this process may open %d (hard limit %d): raise the hard limit (ulimit -Hn, as root, or LimitNOFILE=) or open fewer",
			conns, need, l.Soft, l.Hard)
	}
	return nil
}
