package web

import (
	"syscall"
	"unsafe"
)

// recvNonBlocking reads into p from the non-blocking socket fd, leaving
// the bytes there with peek, retrying on EINTR. A raw system call (it
// cannot block; see wireConn.rawRead) keeps the waiting reader's stack
// shallow (see wireConn.awaitPong).
func recvNonBlocking(fd uintptr, p []byte, peek bool) (int, syscall.Errno) {
	flags := uintptr(syscall.MSG_DONTWAIT)
	if peek {
		flags |= syscall.MSG_PEEK
	}
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}
