package test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The documentation cannot drift from the broker: shell blocks marked
// runnable are run against a real broker, and every code fence in every
// Markdown file is closed (an unclosed one swallows the rest of the page).
//
// A block whose info string is "sh test" runs against a broker with no
// config file; "sh test=example" against one serving the checkout's
// mercury.example.yaml. Each runs with bash -e from the repository's root,
// with the built mercury first on PATH, MERCURY_URL pointing at the broker
// and 127.0.0.1:3000 in the text replaced by its address. A block that
// leaves a process running is not runnable.

type docBlock struct {
	file   string
	line   int
	broker string // "" or "example"
	text   string
}

// markdownFiles lists the Markdown files of the repository, but for
// dependencies.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// scanFences returns the runnable blocks of file, and an error naming the
// line of a fence that is never closed.
func scanFences(file string) ([]docBlock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var blocks []docBlock
	var open string // the opening fence's backticks; "" outside a block
	var cur *docBlock
	var body strings.Builder
	openLine := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " ")
		if open == "" {
			if strings.HasPrefix(line, "```") {
				ticks := line[:len(line)-len(strings.TrimLeft(line, "`"))]
				open, openLine = ticks, n
				cur = nil
				switch info := strings.TrimSpace(line[len(ticks):]); info {
				case "sh test":
					cur = &docBlock{file: file, line: n}
				case "sh test=example":
					cur = &docBlock{file: file, line: n, broker: "example"}
				}
				body.Reset()
			}
			continue
		}
		if strings.HasPrefix(line, open) && strings.TrimSpace(strings.TrimLeft(line, "`")) == "" {
			if cur != nil {
				cur.text = body.String()
				blocks = append(blocks, *cur)
			}
			open = ""
			continue
		}
		body.WriteString(sc.Text() + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if open != "" {
		return blocks, fmt.Errorf("%s:%d: code fence never closed", file, openLine)
	}
	return blocks, nil
}

func TestDocsFencesClosed(t *testing.T) {
	for _, file := range markdownFiles(t) {
		if _, err := scanFences(file); err != nil {
			t.Error(err)
		}
	}
}

func TestDocsRunnableBlocks(t *testing.T) {
	var blocks []docBlock
	for _, file := range markdownFiles(t) {
		bs, _ := scanFences(file) // an unclosed fence fails the test above
		blocks = append(blocks, bs...)
	}
	if len(blocks) == 0 {
		t.Fatal("no runnable blocks found: the README's quick start should have some")
	}
	brokers := map[string]*brokerProc{}
	for _, blk := range blocks {
		if brokers[blk.broker] != nil {
			continue
		}
		if blk.broker == "example" {
			brokers[blk.broker] = startBroker(t, "--config", "../mercury.example.yaml")
		} else {
			brokers[blk.broker] = startBroker(t)
		}
	}
	binDir := filepath.Dir(mercuryBin)
	for _, blk := range blocks {
		name := fmt.Sprintf("%s:%d", strings.TrimPrefix(blk.file, "../"), blk.line)
		t.Run(name, func(t *testing.T) {
			b := brokers[blk.broker]
			script := strings.ReplaceAll(blk.text, "127.0.0.1:3000", b.Listen)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "MERCURY_URL="+b.WS)
			cmd.WaitDelay = time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("block at %s failed: %v\n--- script\n%s--- output\n%s", name, err, script, out)
			}
		})
	}
}
