//go:build !linux

package web

import "syscall"

// recvNonBlocking is Linux only; elsewhere the WebSocket library reads
// every frame (see wireConn.awaitPong).
func recvNonBlocking(fd uintptr, p []byte, peek bool) (int, syscall.Errno) {
	return 0, syscall.ENOSYS
}
