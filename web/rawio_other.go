//go:build !linux

package web

import "syscall"

// writevNonBlocking is Linux only; elsewhere every batch takes the
// blocking path, in a goroutine of its own.
func writevNonBlocking(fd uintptr, bufs [][]byte, iov *[]syscall.Iovec, flat *[]byte) (n int, blocked bool, err error) {
	return 0, true, nil
}

// rawIO: elsewhere reads go through the net package.
const rawIO = false

func readNonBlocking(fd uintptr, p []byte) (n int, again bool, err error) {
	return 0, false, syscall.ENOTSUP
}

// peekNonBlocking is Linux only; elsewhere the WebSocket library reads
// every frame (see wireConn.awaitPong).
func peekNonBlocking(fd uintptr, p []byte) (n int, again bool, err error) {
	return 0, false, syscall.ENOTSUP
}
