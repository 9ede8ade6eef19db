package store

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		// This process is the writer of TestCrash, re-executed from the
		// test binary; it runs until the parent kills it.
		crashChild()
		return
	}
	goleak.VerifyTestMain(m)
}
