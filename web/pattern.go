package web

// pattern is the first segment of a route: what a connection does.
type pattern uint8

const (
	patternSub pattern = iota
	patternPub
	patternBus
	patternPush
	patternPull
)

var patterns = []pattern{patternSub, patternPub, patternBus, patternPush, patternPull}

func (p pattern) String() string {
	return [...]string{"sub", "pub", "bus", "push", "pull"}[p]
}

// postable reports whether the pattern takes messages by HTTP POST.
func (p pattern) postable() bool {
	return p == patternPub || p == patternBus || p == patternPush
}

// sends reports whether frames from the client are messages.
func (p pattern) sends() bool { return p.postable() }
