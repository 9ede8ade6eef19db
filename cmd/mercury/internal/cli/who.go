package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
	"github.com/mercury-broker/mercury/web/client"
)

// RunWho lists the subscriptions under a topic, and with --watch prints
// them joining and leaving.
func RunWho(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("who", "TOPIC [flags]",
		"mercury who /livesys           # every agent connected under /livesys",
		"mercury who /livesys --watch   # then each one that joins or leaves",
		"mercury who /livesys --json    # one JSON object per line")
	cf := addConnFlags(fs, true)
	watch := fs.Bool("watch", false, "keep printing joins and leaves until interrupted")
	asJSON := fs.Bool("json", false, "print JSON lines")
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return command.UsageError("want TOPIC")
	}
	opts, err := cf.options()
	if err != nil {
		return err
	}
	print := func(p client.Presence) {
		if *asJSON {
			b, _ := json.Marshal(p)
			fmt.Fprintf(io.Out, "%s\n", b)
			return
		}
		user := "-"
		if p.User != nil {
			user = *p.User
		}
		fields := []string{p.Topic, user, p.Since.Local().Format(time.DateTime)}
		if p.Event != "" {
			fields = append([]string{p.Event}, fields...)
		}
		if p.Node != "" {
			fields = append(fields, p.Node)
		}
		fmt.Fprintln(io.Out, strings.Join(fields, "\t"))
	}
	if !*watch {
		u, err := cf.target("presence", pos[0], nil)
		if err != nil {
			return err
		}
		list, err := client.ListPresence(ctx, u, opts)
		if err != nil {
			return err
		}
		for _, p := range list {
			print(p)
		}
		return nil
	}
	// Watching: the subscription's own join lists who is there first.
	u, err := cf.target("sub", pos[0], url.Values{"envelope": {"1"}, "presence": {"1"}})
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, u, opts)
	if err != nil {
		return &command.ExitError{Code: command.ExitConnect, Err: err}
	}
	defer c.CloseNow()
	list, err := client.ListPresence(ctx, strings.Replace(u, "/sub/", "/presence/", 1), opts)
	if err != nil {
		return err
	}
	listed := map[string]bool{} // joins that came before the list, in it already
	key := func(p client.Presence) string {
		user := ""
		if p.User != nil {
			user = *p.User
		}
		return fmt.Sprint(p.Topic, "\x00", user, "\x00", p.Since.UnixNano())
	}
	for _, p := range list {
		print(p)
		listed[key(p)] = true
	}
	for {
		f, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var ev struct {
			Presence *client.Presence `json:"presence"`
		}
		if json.Unmarshal(f.Data, &ev) != nil || ev.Presence == nil {
			continue
		}
		if ev.Presence.Event == "join" && listed[key(*ev.Presence)] {
			delete(listed, key(*ev.Presence))
			continue
		}
		print(*ev.Presence)
	}
}
