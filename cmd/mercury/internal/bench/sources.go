package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// One source address can hold one connection per ephemeral port to a
// given server address: about 28,000 with Linux's default
// net.ipv4.ip_local_port_range. Every address of 127.0.0.0/8 is
// loopback on Linux, so binding each connection to 127.0.0.1, 127.0.0.2,
// … in turn lets one machine open far more connections to a local broker.

// sourceAddrs is the --source-addrs flag: a count N (127.0.0.1 to
// 127.0.0.N) or a comma-separated list of local addresses. Empty: the
// kernel picks the source address.
type sourceAddrs []netip.Addr

// maxLoopbackSources is the most addresses a count may ask for: the
// 127.0.0.0/8 block without its network and broadcast addresses.
const maxLoopbackSources = 1<<24 - 2

func (s *sourceAddrs) String() string {
	parts := make([]string, len(*s))
	for i, a := range *s {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

func (s *sourceAddrs) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > maxLoopbackSources {
			return fmt.Errorf("%d: want 1 to %d loopback addresses, or a list of addresses", n, maxLoopbackSources)
		}
		*s = loopbackSources(n)
		return nil
	}
	var addrs sourceAddrs
	for f := range strings.SplitSeq(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is neither a count nor an IP address", f)
		}
		addrs = append(addrs, a)
	}
	*s = addrs
	return nil
}

// loopbackSources returns 127.0.0.1 to 127.0.0.n.
func loopbackSources(n int) sourceAddrs {
	addrs := make(sourceAddrs, n)
	for i := range addrs {
		v := uint32(127<<24 | (i + 1))
		addrs[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return addrs
}

// dialContext returns a dial function that binds each connection to the
// next source address in turn; with none, the kernel picks.
func (s sourceAddrs) dialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(s) == 0 {
		return (&net.Dialer{Timeout: timeout}).DialContext
	}
	dialers := make([]*net.Dialer, len(s))
	for i, a := range s {
		dialers[i] = &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: a.AsSlice()}}
	}
	var next atomic.Uint64
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := dialers[(next.Add(1)-1)%uint64(len(dialers))]
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, explainDialError(err, d.LocalAddr)
		}
		return c, nil
	}
}

// explainDialError says what to do when the kernel has no port left.
func explainDialError(err error, local net.Addr) error {
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		from := "this source address"
		if local != nil {
			from = local.String()
		}
		return fmt.Errorf("%w (no ephemeral port left on %s: spread the connections over more with --source-addrs)", err, from)
	}
	return err
}
