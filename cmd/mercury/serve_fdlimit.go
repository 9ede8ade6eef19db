package main

import (
	"errors"
	"log/slog"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/fdlimit"
)

// Descriptors the broker keeps for what is not a client connection: the
// listeners, the NATS connection, the bridge's and the audit log's
// databases, the logs, the runtime's poller, with room to spare.
const fdReserveBase = 64

// fdReserveStore is what the durable store may hold open on top: Pebble's
// table cache keeps up to its MaxOpenFiles (1,000 by default) tables open.
const fdReserveStore = 1000

// raiseFileLimit raises the open-files limit to the hard limit, so that
// the hard limit (systemd's LimitNOFILE, `ulimit -Hn`) is what caps
// connections, not a shell's default soft limit of 1,024.
func raiseFileLimit(logger *slog.Logger) (fdlimit.Limit, bool) {
	l, err := fdlimit.Raise()
	if errors.Is(err, fdlimit.ErrUnsupported) {
		return l, false
	}
	if err != nil {
		logger.Warn("the open-files limit stays as it is", "err", err)
		return l, l.Soft > 0
	}
	return l, true
}

// logConnectionCapacity says, once, how many connections the open-files
// limit allows, and warns when max_connections asks for more.
func logConnectionCapacity(logger *slog.Logger, l fdlimit.Limit, withStore bool, maxConnections int) {
	reserved := fdReserveBase
	if withStore {
		reserved += fdReserveStore
	}
	capacity := l.Connections(reserved)
	logger.Info("connection capacity", "connections", capacity, "open_files", l.Soft,
		"open_files_hard", l.Hard, "reserved", reserved, "max_connections", maxConnections)
	if maxConnections > capacity {
		logger.Warn("max_connections is above what the open-files limit allows: connections past it will fail to be accepted; raise the hard limit (systemd LimitNOFILE=, ulimit -Hn) or lower max_connections",
			"max_connections", maxConnections, "connections", capacity, "open_files", l.Soft)
	}
}
