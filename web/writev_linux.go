package web

import (
	"runtime"
	"syscall"
	"unsafe"
)

// writevNonBlocking writes bufs to the non-blocking socket fd with writev,
// until everything is written or the socket is full. iov is scratch space
// reused across calls.
func writevNonBlocking(fd uintptr, bufs [][]byte, iov *[]syscall.Iovec) (n int, blocked bool, err error) {
	for len(bufs) > 0 {
		v := (*iov)[:0]
		for _, b := range bufs {
			if len(b) == 0 {
				continue
			}
			if len(v) == maxIovecs {
				break
			}
			vec := syscall.Iovec{Base: &b[0]}
			vec.SetLen(len(b))
			v = append(v, vec)
		}
		*iov = v
		if len(v) == 0 {
			return n, false, nil
		}
		r, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		runtime.KeepAlive(bufs)
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return n, true, nil
		default:
			return n, false, errno
		}
		n += int(r)
		bufs = skipBytes(bufs, int(r))
	}
	return n, false, nil
}

// maxIovecs is Linux's IOV_MAX: the most buffers one writev takes.
const maxIovecs = 1024
