package cli

import (
	"context"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

func RunPush(ctx context.Context, args []string, io command.Stdio) error {
	return runSender(ctx, "push", args, io,
		"mercury push /jobs '{\"task\":\"resize\",\"id\":7}'   # one job; exactly one puller of /jobs gets it",
		"mercury push /jobs < jobs.jsonl                 # each line of standard input is a job",
		"mercury push /jobs                              # a prompt: each line typed is a job",
		"mercury push /jobs --envelope --json < jobs.jsonl   # confirmed, printing each job's seq",
	)
}
