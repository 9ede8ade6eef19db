package test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Shell completion, checked by the shells themselves.

func requireShell(t *testing.T, shell string) {
	t.Helper()
	if _, err := exec.LookPath(shell); err == nil {
		return
	}
	msg := shell + " is needed for its completion test: apt-get install -y " + shell
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// inShell runs script in shell with the mercury binary's directory first
// on PATH.
func inShell(t *testing.T, shell string, args ...string) string {
	t.Helper()
	requireShell(t, shell)
	cmd := exec.Command(shell, args...)
	cmd.Env = append(cliEnv(t), "MERCURY_BIN="+mercuryBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	return string(out)
}

func TestCompletionBash(t *testing.T) {
	complete := func(words ...string) string {
		script := `source <("$MERCURY_BIN" completion bash)
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _mercury; echo "${COMPREPLY[*]}"`
		return strings.TrimSpace(inShell(t, "bash", append([]string{"-c", script, "bash"}, words...)...))
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"mercury", "p"}, "pub pull push"},
		{[]string{"mercury", "sub", "/x", "--co"}, "--count"},
		{[]string{"mercury", "pull", "--n"}, "--nack-delay --nack-on-error"},
		{[]string{"mercury", "serve", "--li"}, "--listen"},
		{[]string{"mercury", "completion", "f"}, "fish"},
		{[]string{"mercury", "sub", "--server", ""}, ""}, // a value: no flags offered
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("%q: completed %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestCompletionFish(t *testing.T) {
	complete := func(line string) string {
		return inShell(t, "fish", "--no-config", "-c", `"$MERCURY_BIN" completion fish | source; complete -C "`+line+`"`)
	}
	if got := complete("mercury pu"); !strings.Contains(got, "pub\t") || !strings.Contains(got, "pull\t") || !strings.Contains(got, "push\t") {
		t.Errorf("commands: %q", got)
	}
	if got := complete("mercury sub --co"); !strings.HasPrefix(got, "--count\texit after N messages") {
		t.Errorf("flags: %q", got)
	}
	if got := complete("mercury completion "); !strings.Contains(got, "bash\n") || !strings.Contains(got, "fish\n") || !strings.Contains(got, "zsh\n") {
		t.Errorf("shells: %q", got)
	}
}

func TestCompletionZsh(t *testing.T) {
	// Loads, and defines the completion function for mercury.
	out := inShell(t, "zsh", "-f", "-c", `compdef() { echo "compdef $*" }
source <("$MERCURY_BIN" completion zsh) && whence -w _mercury`)
	if !strings.Contains(out, "compdef _mercury mercury") || !strings.Contains(out, "_mercury: function") {
		t.Fatalf("zsh: %q", out)
	}
	// Offers each command's flags to _arguments.
	script, err := exec.Command(mercuryBin, "completion", "zsh").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"'--count[exit after N messages", "'--ca[", ":file:_files'", "'sub:print the messages"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("zsh completion lacks %q", want)
		}
	}
}
