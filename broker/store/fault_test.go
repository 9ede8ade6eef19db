package store

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// errInjected is the error a faultKV's failing sync returns.
var errInjected = errors.New("injected sync failure")

// faultKV wraps a KV to delay and fail synced batches, as a slow or
// failing disk would. A failed sync writes nothing.
type faultKV struct {
	KV
	syncDelay atomic.Int64 // nanoseconds each synced batch waits first
	failSyncs atomic.Bool
	syncs     atomic.Int64 // synced batches applied (or failed)
}

func (f *faultKV) Apply(ops []Op, sync bool) error {
	if !sync {
		return f.KV.Apply(ops, false)
	}
	f.syncs.Add(1)
	time.Sleep(time.Duration(f.syncDelay.Load()))
	if f.failSyncs.Load() {
		return errInjected
	}
	return f.KV.Apply(ops, true)
}

// openFaulty opens the durable store in dir on a faultKV.
func openFaulty(t testing.TB, dir string) (*Durable, *faultKV) {
	t.Helper()
	kv, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultKV{KV: kv}
	d, err := NewDurable(f)
	if err != nil {
		kv.Close()
		t.Fatal(err)
	}
	return d, f
}
