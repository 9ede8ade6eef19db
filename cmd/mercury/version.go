package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// version is set at build time with -ldflags "-X main.version=…";
// otherwise it is the module version the build recorded (go install
// …@v1.2.0 records v1.2.0), or "dev".
var version = "dev"

func init() {
	if version != "dev" {
		return
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
}

func runVersion(_ context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("version", "")
	if err := command.ParseFlags(fs, args, io); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "mercury %s%s %s %s/%s\n", version, revision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// revision returns " (commit)" from the build's VCS stamp, if any.
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return " (" + rev + dirty + ")"
}
