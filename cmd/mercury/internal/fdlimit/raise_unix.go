//go:build unix

package fdlimit

import (
	"fmt"
	"syscall"
)

// Raise sets the soft open-files limit to the hard limit and returns both.
// When the system refuses (macOS caps it below an infinite hard limit),
// the limit stays where it was and the error says why.
func Raise() (Limit, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return Limit{}, fmt.Errorf("failed to read the open-files limit: %w", err)
	}
	l := Limit{Soft: rl.Cur, Hard: rl.Max, Before: rl.Cur}
	if rl.Cur >= rl.Max {
		return l, nil
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return l, fmt.Errorf("failed to raise the open-files limit from %d to %d: %w", l.Soft, rl.Max, err)
	}
	l.Soft = rl.Max
	return l, nil
}
