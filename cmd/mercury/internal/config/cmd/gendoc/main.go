// Command gendoc writes the configuration reference (config.Reference) to
// the file named by its argument; go generate runs it.
package main

import (
	"fmt"
	"os"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], config.Reference(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
