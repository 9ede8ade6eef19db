//go:build !unix

package fdlimit

// Raise does nothing here: there is no RLIMIT_NOFILE.
func Raise() (Limit, error) { return Limit{}, ErrUnsupported }
