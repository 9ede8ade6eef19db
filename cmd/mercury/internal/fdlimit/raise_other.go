//go:build !unix

package fdlimit

import "errors"

// Raise is not supported here: there is no RLIMIT_NOFILE to read.
func Raise() (Limit, error) {
	return Limit{}, errors.New("the open-files limit is not readable on this system")
}
