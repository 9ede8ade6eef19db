package store

// Open opens (creating if needed) Mercury's durable store in directory dir,
// with the engine chosen by measurement: Pebble. README.md ("Choosing the
// durable store") has the figures and the reasons; OpenBolt stays so that
// the comparison can be run again.
func Open(dir string) (KV, error) { return OpenPebble(dir) }
