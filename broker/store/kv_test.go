package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// engine is one implementation of KV under test.
type engine struct {
	name string
	// open opens the store kept in directory dir (creating it the first
	// time; the same dir again means reopening).
	open func(dir string) (KV, error)
	// durable: the data survives Close and reopen, and a crash.
	durable bool
}

var (
	pebbleEngine = engine{"pebble", OpenPebble, true}
	boltEngine   = engine{"bolt", func(dir string) (KV, error) { return OpenBolt(filepath.Join(dir, "store.bolt")) }, true}
	memEngine    = engine{"mem", func(string) (KV, error) { return openMem(), nil }, false}
)

func engineByName(name string) (engine, bool) {
	for _, e := range []engine{pebbleEngine, boltEngine, memEngine} {
		if e.name == name {
			return e, true
		}
	}
	return engine{}, false
}

func TestPebble(t *testing.T)      { testKV(t, pebbleEngine) }
func TestBolt(t *testing.T)        { testKV(t, boltEngine) }
func TestMemBaseline(t *testing.T) { testKV(t, memEngine) }

// testKV is the conformance suite every KV passes.
func testKV(t *testing.T, e engine) {
	t.Run("GetPut", func(t *testing.T) { testGetPut(t, e) })
	t.Run("BatchIsAtomic", func(t *testing.T) { testBatchIsAtomic(t, e) })
	t.Run("LaterOpWins", func(t *testing.T) { testLaterOpWins(t, e) })
	t.Run("InvalidOps", func(t *testing.T) { testInvalidOps(t, e) })
	t.Run("ScanOrder", func(t *testing.T) { testScanOrder(t, e) })
	t.Run("ScanPrefixStart", func(t *testing.T) { testScanPrefixStart(t, e) })
	t.Run("ScanStops", func(t *testing.T) { testScanStops(t, e) })
	t.Run("Deletes", func(t *testing.T) { testDeletes(t, e) })
	t.Run("RangeDeletes", func(t *testing.T) { testRangeDeletes(t, e) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, e) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, e) })
	t.Run("Committer", func(t *testing.T) { testCommitter(t, e) })
	if e.durable {
		t.Run("Reopen", func(t *testing.T) { testReopen(t, e) })
		t.Run("Crash", func(t *testing.T) { testCrash(t, e) })
	}
}

// openKV opens a store of engine e in dir and closes it when the test ends
// (unless the test closed it).
func openKV(t testing.TB, e engine, dir string) KV {
	t.Helper()
	kv, err := e.open(dir)
	if err != nil {
		t.Fatalf("open %s: %v", e.name, err)
	}
	t.Cleanup(func() {
		if err := kv.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close %s: %v", e.name, err)
		}
	})
	return kv
}

func apply(t testing.TB, kv KV, sync bool, ops ...Op) {
	t.Helper()
	if err := kv.Apply(ops, sync); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func put(k, v string) Op { return Op{Key: []byte(k), Value: []byte(v)} }
func del(k string) Op    { return Op{Key: []byte(k), Delete: true} }

// get returns key's value, or "<absent>".
func get(t testing.TB, kv KV, key string) string {
	t.Helper()
	v, ok, err := kv.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !ok {
		if v != nil {
			t.Errorf("get %q: not found but value %q", key, v)
		}
		return "<absent>"
	}
	return string(v)
}

// scanAll returns "key=value" for each key Scan visits.
func scanAll(t testing.TB, kv KV, prefix, start []byte) []string {
	t.Helper()
	var got []string
	err := kv.Scan(prefix, start, func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	if err != nil {
		t.Fatalf("scan %q from %q: %v", prefix, start, err)
	}
	return got
}

func testGetPut(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	if got := get(t, kv, "a"); got != "<absent>" {
		t.Fatalf("get from empty store = %q", got)
	}
	apply(t, kv, true, put("a", "1"), put("b", ""), Op{Key: []byte("c")}, put("\x00", "zero"))
	for k, want := range map[string]string{"a": "1", "b": "", "c": "", "\x00": "zero", "d": "<absent>"} {
		if got := get(t, kv, k); got != want {
			t.Errorf("get %q = %q, want %q", k, got, want)
		}
	}
	// An empty value exists, and is not nil.
	if v, ok, err := kv.Get([]byte("b")); err != nil || !ok || v == nil {
		t.Errorf("get of empty value = %q, %v, %v; want non-nil empty, true, nil", v, ok, err)
	}
	// Get returns a copy; so does Apply keep one of what it was given.
	v, _, _ := kv.Get([]byte("a"))
	v[0] = 'X'
	ops := []Op{put("e", "5")}
	apply(t, kv, false, ops...)
	ops[0].Value[0] = 'Y'
	if got := get(t, kv, "a"); got != "1" {
		t.Errorf("get after changing a returned value = %q, want 1", got)
	}
	if got := get(t, kv, "e"); got != "5" {
		t.Errorf("get after changing an applied value = %q, want 5", got)
	}
	apply(t, kv, true, put("a", "2"))
	if got := get(t, kv, "a"); got != "2" {
		t.Errorf("get after overwrite = %q, want 2", got)
	}
	if err := kv.Apply(nil, true); err != nil {
		t.Errorf("empty apply: %v", err)
	}
}

func testBatchIsAtomic(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	apply(t, kv, true, put("keep", "old"))
	// One invalid op fails the whole batch: nothing of it is written.
	err := kv.Apply([]Op{put("x", "1"), del("keep"), put("y", "2"), {Key: nil, Value: []byte("3")}}, true)
	if !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("apply with an empty key = %v, want ErrEmptyKey", err)
	}
	if got := scanAll(t, kv, nil, nil); !slices.Equal(got, []string{"keep=old"}) {
		t.Errorf("after failed batch: %q, want only keep=old", got)
	}
	// Readers never see half a batch (the crash test checks the same
	// across a SIGKILL).
	const pairs = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range pairs {
			k := fmt.Sprintf("%04d", i)
			apply(t, kv, false, put("p/a/"+k, k), put("p/b/"+k, k))
		}
	})
	for range 50 {
		a := len(scanAll(t, kv, []byte("p/a/"), nil))
		b := len(scanAll(t, kv, []byte("p/b/"), nil))
		both := scanAll(t, kv, []byte("p/"), nil)
		if len(both)%2 != 0 {
			t.Fatalf("a scan saw %d keys of paired batches (a=%d b=%d)", len(both), a, b)
		}
		if h := len(both) / 2; !slices.Equal(both[:h], prefixed(both[h:], "p/a/")) {
			t.Fatalf("a scan saw unpaired keys: %q", both)
		}
	}
	wg.Wait()
}

// prefixed rewrites "p/b/K=V" entries to "p/a/K=V", so that the two halves
// of a paired scan can be compared.
func prefixed(entries []string, p string) []string {
	out := make([]string, len(entries))
	for i, s := range entries {
		out[i] = p + s[len(p):]
	}
	return out
}

func testLaterOpWins(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	apply(t, kv, true, put("k", "1"), del("k"), put("k", "2"), put("gone", "x"), del("gone"), put("twice", "a"), put("twice", "b"))
	want := []string{"k=2", "twice=b"}
	if got := scanAll(t, kv, nil, nil); !slices.Equal(got, want) {
		t.Errorf("scan = %q, want %q", got, want)
	}
	if got := get(t, kv, "gone"); got != "<absent>" {
		t.Errorf("get gone = %q", got)
	}
}

func testInvalidOps(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	long := bytes.Repeat([]byte("k"), MaxKeySize+1)
	for _, tc := range []struct {
		name string
		op   Op
		want error
	}{
		{"empty key", Op{Value: []byte("v")}, ErrEmptyKey},
		{"empty key delete", Op{Delete: true}, ErrEmptyKey},
		{"long key", Op{Key: long, Value: []byte("v")}, ErrKeyTooLarge},
	} {
		err := kv.Apply([]Op{put("fine", "1"), tc.op}, true)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: apply = %v, want %v", tc.name, err, tc.want)
		} else if want := "op 1: "; !bytes.HasPrefix([]byte(err.Error()), []byte(want)) {
			t.Errorf("%s: error %q does not say which op", tc.name, err)
		}
	}
	if got := scanAll(t, kv, nil, nil); len(got) != 0 {
		t.Errorf("invalid batches wrote %q", got)
	}
	// The longest key allowed works.
	apply(t, kv, true, Op{Key: long[:MaxKeySize], Value: []byte("v")})
	if got := get(t, kv, string(long[:MaxKeySize])); got != "v" {
		t.Errorf("get longest key = %q", got)
	}
}

func testScanOrder(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	keys := []string{"b", "a", "\x00", "\xff", "\xff\xff", "a\x00", "a\xff", "ab", "B", "aa", "\x00\x00", "m/x\x00\x00"}
	for i := range 300 {
		keys = append(keys, string(binary.BigEndian.AppendUint64([]byte("n/"), rand.Uint64N(1<<40)+uint64(i)<<48)))
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	var ops []Op
	for _, k := range keys {
		ops = append(ops, put(k, "v"))
	}
	apply(t, kv, false, ops[:len(ops)/2]...)
	apply(t, kv, true, ops[len(ops)/2:]...)
	slices.Sort(keys)
	var got []string
	if err := kv.Scan(nil, nil, func(k, _ []byte) bool { got = append(got, string(k)); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, keys) {
		t.Errorf("scan order:\n got %q\nwant %q", got, keys)
	}
}

// seqKey is the broker's layout of a message key: m/<bus>\x00<seq>.
func seqKey(bus string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("m/"+bus+"\x00"), seq)
}

func testScanPrefixStart(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	var ops []Op
	for seq := uint64(1); seq <= 20; seq++ {
		for _, bus := range []string{"a", "a/b", "ab", "b"} {
			// Values say which record it is.
			ops = append(ops, Op{Key: seqKey(bus, seq*10), Value: fmt.Appendf(nil, "%s#%d", bus, seq*10)})
		}
	}
	ops = append(ops, put("\xff\xff", "top"), put("\xff\xff\x01", "top1"), put("\xff\xfe", "below"))
	apply(t, kv, true, ops...)

	values := func(prefix, start []byte) []string {
		var got []string
		err := kv.Scan(prefix, start, func(k, v []byte) bool {
			if !bytes.HasPrefix(k, prefix) {
				t.Errorf("scan %q visited %q", prefix, k)
			}
			got = append(got, string(v))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := func(bus string, from, to uint64) []string {
		var w []string
		for seq := from; seq <= to; seq += 10 {
			w = append(w, fmt.Sprintf("%s#%d", bus, seq))
		}
		return w
	}
	bus := []byte("m/a\x00")
	for _, tc := range []struct {
		name          string
		prefix, start []byte
		want          []string
	}{
		{"whole bus", bus, nil, want("a", 10, 200)},
		{"other bus", []byte("m/ab\x00"), nil, want("ab", 10, 200)},
		{"start at a stored seq", bus, seqKey("a", 70), want("a", 70, 200)},
		{"start between seqs", bus, seqKey("a", 71), want("a", 80, 200)},
		{"start at the last", bus, seqKey("a", 200), want("a", 200, 200)},
		{"start past the last", bus, seqKey("a", 201), nil},
		{"start below the prefix", bus, []byte("m/"), want("a", 10, 200)},
		{"start past the prefix", bus, []byte("m/b"), nil},
		{"start is the prefix", bus, bus, want("a", 10, 200)},
		{"no such prefix", []byte("m/c\x00"), nil, nil},
		{"prefix of 0xff", []byte("\xff\xff"), nil, []string{"top", "top1"}},
		{"prefix of 0xff from", []byte("\xff\xff"), []byte("\xff\xff\x00"), []string{"top1"}},
		{"prefix 0xff", []byte("\xff"), nil, []string{"below", "top", "top1"}},
	} {
		if got := values(tc.prefix, tc.start); !slices.Equal(got, tc.want) {
			t.Errorf("%s: scan %q from %q = %q, want %q", tc.name, tc.prefix, tc.start, got, tc.want)
		}
	}
	if n := len(values(nil, nil)); n != 83 {
		t.Errorf("scan of everything saw %d keys, want 83", n)
	}
	if got := values(nil, []byte("\xff\xff")); !slices.Equal(got, []string{"top", "top1"}) {
		t.Errorf("scan of everything from \\xff\\xff = %q", got)
	}
}

func testScanStops(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	for i := range 10 {
		apply(t, kv, false, put(fmt.Sprintf("k%d", i), "v"))
	}
	calls := 0
	err := kv.Scan([]byte("k"), []byte("k2"), func(k, _ []byte) bool {
		calls++
		return string(k) != "k4"
	})
	if err != nil || calls != 3 {
		t.Errorf("scan that stops at k4 made %d calls (err %v), want 3", calls, err)
	}
	// A scan callback may read the store.
	err = kv.Scan([]byte("k"), nil, func(k, v []byte) bool {
		got, ok, err := kv.Get(k)
		if err != nil || !ok || !bytes.Equal(got, v) {
			t.Errorf("get %q inside scan = %q, %v, %v", k, got, ok, err)
		}
		return true
	})
	if err != nil {
		t.Error(err)
	}
}

func testDeletes(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	apply(t, kv, true, put("q/1", "a"), put("q/2", "b"), put("q/3", "c"))
	apply(t, kv, true, del("q/2"), del("q/never"))
	if got, want := scanAll(t, kv, []byte("q/"), nil), []string{"q/1=a", "q/3=c"}; !slices.Equal(got, want) {
		t.Errorf("after delete: %q, want %q", got, want)
	}
	apply(t, kv, false, del("q/1"), del("q/3"))
	if got := scanAll(t, kv, []byte("q/"), nil); len(got) != 0 {
		t.Errorf("after deleting all: %q", got)
	}
	apply(t, kv, true, put("q/2", "again"))
	if got := get(t, kv, "q/2"); got != "again" {
		t.Errorf("get re-put = %q", got)
	}
}

func testRangeDeletes(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	var ops []Op
	for i := range 10 {
		ops = append(ops, Op{Key: seqKey("b", uint64(i)), Value: []byte("m")})
	}
	apply(t, kv, true, append(ops, put("m/a", "before"), put("m/c", "after"))...)
	// [2, 5), then a range already empty, then one reaching past the last key.
	apply(t, kv, false, Op{Key: seqKey("b", 2), End: seqKey("b", 5), Delete: true})
	apply(t, kv, true, Op{Key: seqKey("b", 3), End: seqKey("b", 4), Delete: true})
	var left []uint64
	kv.Scan([]byte("m/b\x00"), nil, func(k, _ []byte) bool {
		left = append(left, binary.BigEndian.Uint64(k[len(k)-8:]))
		return true
	})
	if want := []uint64{0, 1, 5, 6, 7, 8, 9}; !slices.Equal(left, want) {
		t.Errorf("after deleting [2,5): %v, want %v", left, want)
	}
	// A later put in the same batch wins over the range delete, and
	// keys outside the range stay.
	apply(t, kv, true, Op{Key: seqKey("b", 0), End: []byte("m/b\x01"), Delete: true}, Op{Key: seqKey("b", 7), Value: []byte("again")})
	if got, want := scanAll(t, kv, nil, nil), []string{"m/a=before", string(seqKey("b", 7)) + "=again", "m/c=after"}; !slices.Equal(got, want) {
		t.Errorf("after deleting the whole range: %q, want %q", got, want)
	}
	for _, bad := range []Op{
		{Key: []byte("b"), End: []byte("b"), Delete: true},
		{Key: []byte("c"), End: []byte("b"), Delete: true},
		{Key: []byte("b"), End: []byte("c")},
	} {
		if err := kv.Apply([]Op{put("x", "1"), bad}, true); !errors.Is(err, ErrBadRange) {
			t.Errorf("range %q..%q delete=%v: apply = %v, want ErrBadRange", bad.Key, bad.End, bad.Delete, err)
		}
	}
	if got := get(t, kv, "x"); got != "<absent>" {
		t.Errorf("a refused batch wrote x=%q", got)
	}
}

func testClosed(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	apply(t, kv, true, put("a", "1"))
	if err := kv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := kv.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close = %v, want ErrClosed", err)
	}
	if err := kv.Apply([]Op{put("b", "2")}, true); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close = %v, want ErrClosed", err)
	}
	if _, _, err := kv.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("get after close = %v, want ErrClosed", err)
	}
	if err := kv.Scan(nil, nil, func(_, _ []byte) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("scan after close = %v, want ErrClosed", err)
	}
}

func testReopen(t *testing.T, e engine) {
	dir := t.TempDir()
	kv := openKV(t, e, dir)
	apply(t, kv, true, put("synced", "1"), put("gone", "x"))
	apply(t, kv, false, put("unsynced", "2"), del("gone"))
	var ops []Op
	for seq := range uint64(1000) {
		ops = append(ops, Op{Key: seqKey("bus", seq), Value: bytes.Repeat([]byte{byte(seq)}, 200)})
	}
	apply(t, kv, false, ops...)
	if err := kv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	// A second open of a store that is open elsewhere fails; of a closed
	// one, it finds everything.
	kv = openKV(t, e, dir)
	if other, err := e.open(dir); err == nil {
		other.Close()
		t.Errorf("a second open of an open %s store succeeded", e.name)
	}
	for k, want := range map[string]string{"synced": "1", "unsynced": "2", "gone": "<absent>"} {
		if got := get(t, kv, k); got != want {
			t.Errorf("after reopen, get %q = %q, want %q", k, got, want)
		}
	}
	n := 0
	err := kv.Scan([]byte("m/bus\x00"), nil, func(k, v []byte) bool {
		if seq := binary.BigEndian.Uint64(k[len(k)-8:]); seq != uint64(n) || !bytes.Equal(v, bytes.Repeat([]byte{byte(seq)}, 200)) {
			t.Errorf("after reopen, record %d is %q (%d bytes)", n, k, len(v))
		}
		n++
		return true
	})
	if err != nil || n != 1000 {
		t.Errorf("after reopen, scan found %d records (err %v), want 1000", n, err)
	}
}

// testConcurrent runs writers through Apply and through a Committer at
// once, with readers alongside; -race checks the engine's and the
// Committer's synchronisation.
func testConcurrent(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	c := NewCommitter(kv)
	defer c.Close()
	const writers, perWriter = 16, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				k := fmt.Sprintf("w/%02d/%03d", w, i)
				ops := []Op{put(k, k), put(k+"/tmp", "x"), del(k + "/tmp")}
				var err error
				if w%2 == 0 {
					err = c.Commit(ops)
				} else {
					err = kv.Apply(ops, i%4 == 0)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if got := get(t, kv, k); got != k {
					t.Errorf("writer %d: get own key %q = %q", w, k, got)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				var prev []byte
				err := kv.Scan([]byte("w/"), nil, func(k, _ []byte) bool {
					if bytes.Compare(prev, k) >= 0 {
						t.Errorf("scan out of order: %q after %q", k, prev)
					}
					prev = append(prev[:0], k...)
					return true
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := scanAll(t, kv, []byte("w/"), nil)
	if len(got) != writers*perWriter {
		t.Errorf("found %d keys, want %d", len(got), writers*perWriter)
	}
	for _, kvs := range got {
		if bytes.HasSuffix([]byte(kvs), []byte("/tmp=x")) {
			t.Errorf("a deleted key survived: %q", kvs)
		}
	}
}

// testCommitter checks the Committer on a real engine: ops of one caller
// are applied in order, invalid ops fail only their caller, and Close
// commits nothing more.
func testCommitter(t *testing.T, e engine) {
	kv := openKV(t, e, t.TempDir())
	c := NewCommitter(kv)
	if err := c.Commit([]Op{put("k", "1"), del("k"), put("k", "2"), put("l", "x")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit([]Op{put("l", "y")}); err != nil {
		t.Fatal(err)
	}
	if got := scanAll(t, kv, nil, nil); !slices.Equal(got, []string{"k=2", "l=y"}) {
		t.Errorf("after commits: %q", got)
	}
	if err := c.Commit([]Op{put("m", "1"), {Key: nil}}); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("commit with an empty key = %v, want ErrEmptyKey", err)
	}
	if err := c.Commit(nil); err != nil {
		t.Errorf("empty commit: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit([]Op{put("n", "1")}); !errors.Is(err, ErrClosed) {
		t.Errorf("commit after close = %v, want ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close = %v, want ErrClosed", err)
	}
	if got := scanAll(t, kv, nil, nil); !slices.Equal(got, []string{"k=2", "l=y"}) {
		t.Errorf("after close: %q", got)
	}
}

// A Scan callback that reads the store while Close waits gets ErrClosed,
// not a deadlock.
func TestCloseDuringScan(t *testing.T) {
	for _, e := range []engine{pebbleEngine, boltEngine} {
		t.Run(e.name, func(t *testing.T) {
			kv := openKV(t, e, t.TempDir())
			apply(t, kv, true, put("a", "1"), put("b", "2"))
			inScan, closing := make(chan struct{}), make(chan error)
			var getErr error
			go func() {
				<-inScan
				closing <- kv.Close()
			}()
			err := kv.Scan(nil, nil, func(k, _ []byte) bool {
				if string(k) == "a" {
					close(inScan)
					return true
				}
				// Close has begun by the time it is waiting for us.
				waitFor(t, "close to begin", func() bool {
					_, _, err := kv.Get([]byte("a"))
					return errors.Is(err, ErrClosed)
				})
				_, _, getErr = kv.Get(k)
				return true
			})
			if err != nil {
				t.Errorf("scan: %v", err)
			}
			if !errors.Is(getErr, ErrClosed) {
				t.Errorf("get inside a scan during close = %v, want ErrClosed", getErr)
			}
			if err := <-closing; err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mercury-data", "store")
	kv, err := Open(dir)
	if err != nil {
		t.Fatalf("open in a directory that does not exist yet: %v", err)
	}
	apply(t, kv, true, put("k", "v"))
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
}
