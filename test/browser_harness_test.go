package test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which the dashboard tests drive.
const chromiumPath = "/usr/bin/chromium"

// requireChromium skips a test when chromium is missing, except in CI,
// where that is a failure.
func requireChromium(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err == nil {
		return
	}
	msg := "chromium is needed at " + chromiumPath + " (apt-get install chromium)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// artifactsDir is where the dashboard tests leave their screenshots:
// $MERCURY_ARTIFACTS, or test/artifacts.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MERCURY_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless chromium showing the dashboard of one broker. It
// records console errors, uncaught exceptions and every request the page
// makes, so a test can check that nothing went to another host.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base *url.URL

	mu       sync.Mutex
	errors   []string // console errors and exceptions
	requests []string // every URL requested (HTTP and WebSocket)
}

// newBrowser starts chromium for base (the broker's http://host:port). It
// is closed when the test ends, with a screenshot of the page as it is
// then saved under artifactsDir as <test name>.png.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	requireChromium(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx, base: u}
	// Listen starts the browser; the log and network domains are on.
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("failed to start chromium: %v", err)
	}
	t.Cleanup(func() {
		b.screenshot(t.Name())
		cancelCtx()
		cancelAlloc()
	})
	return b
}

func (b *browser) onEvent(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.errors = append(b.errors, "console.error: "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.errors = append(b.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, text))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			b.errors = append(b.errors, fmt.Sprintf("log (%s) %s: %s", ev.Entry.Source, ev.Entry.URL, ev.Entry.Text))
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *network.EventWebSocketCreated:
		b.requests = append(b.requests, ev.URL)
	}
}

// consoleErrors returns the errors the page logged, less those allow
// accepts (a request the test expects to fail, say).
func (b *browser) consoleErrors(allow func(string) bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.errors {
		if allow == nil || !allow(e) {
			out = append(out, e)
		}
	}
	return out
}

// lastErrors returns the last few page errors, for a failure message.
func (b *browser) lastErrors() []string {
	errs := b.consoleErrors(nil)
	return errs[max(0, len(errs)-5):]
}

// foreignRequests returns the requests the page made to anything but the
// broker (data: URLs and the blank page aside).
func (b *browser) foreignRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.requests {
		u, err := url.Parse(r)
		if err != nil {
			out = append(out, r)
			continue
		}
		if u.Scheme == "data" || r == "about:blank" {
			continue
		}
		if u.Host != b.base.Host || (u.Scheme != "http" && u.Scheme != "ws") {
			out = append(out, r)
		}
	}
	return out
}

func (b *browser) allRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

// run runs actions, failing the test on error; each call has 30 s.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage errors: %v", what, err, b.lastErrors())
	}
}

// open loads the dashboard at fragment (e.g. "#/inspect").
func (b *browser) open(fragment string) {
	b.t.Helper()
	b.run("open "+fragment, chromedp.Navigate(b.base.String()+"/"+fragment), chromedp.WaitReady(chromedp.CSS("#main")))
}

// waitJS waits until the JavaScript expression is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.t.Fatalf("wait for %s: %v\npage errors: %v", what, err, b.lastErrors())
	}
}

// waitText waits until the element sel contains text.
func (b *browser) waitText(sel, text string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("%q in %s", text, sel), fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, text))
}

// text returns the text of the element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// fill replaces the value of the input sel with value, as typing would.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	// Emptied as a person would (the page hears an input event), then typed.
	clear := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = ""; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, sel)
	steps := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](clear)(ctx, t)
		return err
	})}
	if value != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(sel), value))
	}
	b.run("fill "+sel, steps...)
}

// click clicks the element sel (a CSS selector).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// screenshot saves the whole page as name.png under artifactsDir.
func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("no screenshot: %v", err)
		return
	}
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name)
	path := filepath.Join(artifactsDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("no screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}
