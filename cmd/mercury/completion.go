package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/mercury-broker/mercury/cmd/mercury/internal/command"
)

// commandTable is the command table, set in init: the table refers to
// runCompletion, which reads the table.
var commandTable map[string]subcommand

func init() { commandTable = commands }

func runCompletion(ctx context.Context, args []string, io command.Stdio) error {
	fs := command.NewFlagSet("completion", "bash|zsh|fish",
		"source <(mercury completion bash)                  # in ~/.bashrc",
		"mercury completion zsh > \"${fpath[1]}/_mercury\"    # then restart zsh",
		"mercury completion fish > ~/.config/fish/completions/mercury.fish",
	)
	pos, err := command.ParseArgs(fs, args, io)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return command.UsageError("want one shell: bash, zsh or fish")
	}
	cmds, err := completionData(ctx)
	if err != nil {
		return err
	}
	var script string
	switch pos[0] {
	case "bash":
		script = bashCompletion(cmds)
	case "zsh":
		script = zshCompletion(cmds)
	case "fish":
		script = fishCompletion(cmds)
	default:
		return command.UsageError("unknown shell %q: want bash, zsh or fish", pos[0])
	}
	_, err = io.Out.Write([]byte(script))
	return err
}

// completedCommand is what completion knows of a command.
type completedCommand struct {
	name, summary string
	flags         []completedFlag
}

type completedFlag struct {
	name  string
	value string // the value's name (URL, FILE, N …); "" for a switch
	usage string // its first sentence
}

// flagLine matches the first line of a flag in flag.PrintDefaults.
var flagLine = regexp.MustCompile(`^  -([\w-]+)(?: (\S+))?$`)

// completionData reads each command's flags from its own --help, so that
// completion never falls behind the flag sets.
func completionData(ctx context.Context) ([]completedCommand, error) {
	names := make([]string, 0, len(commandTable))
	for name := range commandTable {
		names = append(names, name)
	}
	sort.Strings(names)
	var cmds []completedCommand
	for _, name := range names {
		var help bytes.Buffer
		std := command.Stdio{In: strings.NewReader(""), Out: &help, Err: &help}
		if err := commandTable[name].run(ctx, []string{"--help"}, std); err != nil && !errors.Is(err, flag.ErrHelp) {
			return nil, fmt.Errorf("failed to read the flags of %s: %w", name, err)
		}
		c := completedCommand{name: name, summary: commandTable[name].summary}
		lines := strings.Split(help.String(), "\n")
		for i, line := range lines {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			f := completedFlag{name: m[1], value: m[2]}
			if i+1 < len(lines) {
				f.usage = firstSentence(strings.TrimSpace(lines[i+1]))
			}
			c.flags = append(c.flags, f)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// firstSentence shortens a flag's usage for a completion menu.
func firstSentence(s string) string {
	for _, sep := range []string{"; ", ": ", " (", ", so "} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return strings.NewReplacer("`", "", "'", "", "[", "", "]", "", "\\", "").Replace(s)
}

// takesFile reports whether a flag's value is best completed with file
// names.
func (f completedFlag) takesFile() bool {
	return f.value == "FILE" || f.value == "COMMAND"
}

func bashCompletion(cmds []completedCommand) string {
	var b strings.Builder
	b.WriteString("# bash completion for mercury: source <(mercury completion bash)\n_mercury() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	b.WriteString("  if (( COMP_CWORD == 1 )); then\n")
	fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", commandNames(cmds))
	b.WriteString("  local flags= valued=\n  case ${COMP_WORDS[1]} in\n")
	for _, c := range cmds {
		if c.name == "completion" {
			b.WriteString("    completion) COMPREPLY=($(compgen -W 'bash zsh fish' -- \"$cur\")); return ;;\n")
			continue
		}
		var all, valued []string
		for _, f := range c.flags {
			all = append(all, "--"+f.name)
			if f.value != "" && !f.takesFile() {
				valued = append(valued, "--"+f.name)
			}
		}
		fmt.Fprintf(&b, "    %s) flags=%q valued=%q ;;\n", c.name, strings.Join(all, " "), " "+strings.Join(valued, " ")+" ")
	}
	b.WriteString("  esac\n")
	b.WriteString("  if [[ $valued == *\" $prev \"* ]]; then return; fi  # a value: nothing to offer\n")
	b.WriteString("  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\")); fi\n")
	b.WriteString("}\ncomplete -o default -F _mercury mercury\n")
	return b.String()
}

func zshCompletion(cmds []completedCommand) string {
	var b strings.Builder
	b.WriteString("#compdef mercury\n# zsh completion for mercury: mercury completion zsh > \"${fpath[1]}/_mercury\"\n_mercury() {\n")
	b.WriteString("  local -a commands\n  commands=(\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "    '%s:%s'\n", c.name, firstSentence(c.summary))
	}
	b.WriteString("  )\n  if (( CURRENT == 2 )); then\n    _describe -t commands 'mercury command' commands\n    return\n  fi\n")
	b.WriteString("  case $words[2] in\n")
	for _, c := range cmds {
		if c.name == "completion" {
			b.WriteString("    completion) _values 'shell' bash zsh fish ;;\n")
			continue
		}
		fmt.Fprintf(&b, "    %s) _arguments -S", c.name)
		for _, f := range c.flags {
			spec := fmt.Sprintf("--%s[%s]", f.name, f.usage)
			switch {
			case f.takesFile():
				spec += ":" + strings.ToLower(f.value) + ":_files"
			case f.value != "":
				spec += ":" + strings.ToLower(f.value) + ": "
			}
			fmt.Fprintf(&b, " \\\n        '%s'", spec)
		}
		b.WriteString(" \\\n        '*:argument: ' ;;\n")
	}
	b.WriteString("  esac\n}\nif [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n  _mercury \"$@\"\nelse\n  compdef _mercury mercury\nfi\n")
	return b.String()
}

func fishCompletion(cmds []completedCommand) string {
	var b strings.Builder
	b.WriteString("# fish completion for mercury: mercury completion fish > ~/.config/fish/completions/mercury.fish\n")
	b.WriteString("complete -c mercury -f\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "complete -c mercury -n __fish_use_subcommand -a %s -d '%s'\n", c.name, firstSentence(c.summary))
	}
	for _, c := range cmds {
		cond := fmt.Sprintf("'__fish_seen_subcommand_from %s'", c.name)
		if c.name == "completion" {
			fmt.Fprintf(&b, "complete -c mercury -n %s -a 'bash zsh fish'\n", cond)
			continue
		}
		for _, f := range c.flags {
			fmt.Fprintf(&b, "complete -c mercury -n %s -l %s", cond, f.name)
			switch {
			case f.takesFile():
				b.WriteString(" -r -F")
			case f.value != "":
				b.WriteString(" -r")
			}
			fmt.Fprintf(&b, " -d '%s'\n", f.usage)
		}
	}
	return b.String()
}

func commandNames(cmds []completedCommand) string {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}
