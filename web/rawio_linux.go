package web

import (
	"runtime"
	"syscall"
	"unsafe"
)

// writevNonBlocking writes bufs to the non-blocking socket fd with writev,
// until everything is written or the socket is full. iov and flat are
// scratch space reused across calls. A batch of at most flatMax bytes is
// copied into flat and written with write(2): copying a few hundred bytes
// costs less than the kernel's handling of a vector (importing it, walking
// its segments). (send(2) would skip a little more of the kernel's file
// layer, but /proc/PID/io counts only write calls, which the benchmarks
// report.)
//
// The system calls are raw: the socket never blocks, and the runtime's
// bookkeeping around a blocking call would wake its monitor thread, which
// then polls every 20 µs for as long as the shards write (see rawRead).
func writevNonBlocking(fd uintptr, bufs [][]byte, iov *[]syscall.Iovec, flat *[]byte) (n int, blocked bool, err error) {
	if total := buffersLen(bufs); total > 0 && total <= flatMax {
		if cap(*flat) < flatMax {
			*flat = make([]byte, 0, flatMax)
		}
		b := (*flat)[:0]
		for _, p := range bufs {
			b = append(b, p...)
		}
		*flat = b
		return writeNonBlocking(fd, b)
	}
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
		r, blocked, err := socketCall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)), 0)
		runtime.KeepAlive(bufs)
		if blocked || err != nil {
			return n, blocked, err
		}
		n += r
		bufs = skipBytes(bufs, r)
	}
	return n, false, nil
}

// maxIovecs is Linux's IOV_MAX: the most buffers one writev takes.
const maxIovecs = 1024

// rawIO: reads and writes of a plain socket are raw system calls.
const rawIO = true

// readNonBlocking reads into p from the non-blocking socket fd; again
// reports that nothing is there yet. It is read(2) rather than recv(2)
// so that /proc/PID/io, which the benchmarks report, counts it.
func readNonBlocking(fd uintptr, p []byte) (n int, again bool, err error) {
	if len(p) == 0 {
		return 0, false, nil
	}
	n, again, err = socketCall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0)
	runtime.KeepAlive(p)
	return n, again, err
}

// peekNonBlocking reads into p from the non-blocking socket fd, as
// readNonBlocking does, but leaves the bytes there (see
// wireConn.awaitPong).
func peekNonBlocking(fd uintptr, p []byte) (n int, again bool, err error) {
	n, again, err = socketCall(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_PEEK)
	runtime.KeepAlive(p)
	return n, again, err
}

// flatMax is the largest batch sent from one copied buffer.
const flatMax = 4096

// writeNonBlocking writes b to the non-blocking socket fd until all of it
// is written or the socket is full.
func writeNonBlocking(fd uintptr, b []byte) (n int, blocked bool, err error) {
	for n < len(b) {
		p := b[n:]
		r, blocked, err := socketCall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0)
		runtime.KeepAlive(p)
		if blocked || err != nil {
			return n, blocked, err
		}
		n += r
	}
	return n, false, nil
}

// socketCall makes a raw system call with a non-blocking socket's fd as
// its first argument, again after EINTR; blocked reports EAGAIN (nothing
// to read, or no room to write). It cannot block, so the runtime need not
// hear of it (see writevNonBlocking).
func socketCall(trap, fd, a2, a3, a4 uintptr) (n int, blocked bool, err error) {
	for {
		r, _, errno := syscall.RawSyscall6(trap, fd, a2, a3, a4, 0, 0)
		switch errno {
		case 0:
			return int(r), false, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, true, nil
		default:
			return 0, false, errno
		}
	}
}
