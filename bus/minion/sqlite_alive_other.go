//go:build !unix

package minion

// processAlive cannot tell here: the lease has to expire.
func processAlive(pid int) bool { return true }
