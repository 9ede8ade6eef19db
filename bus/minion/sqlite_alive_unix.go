//go:build unix

package minion

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this id exists here.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
