package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/client"
)

// dialConcurrency bounds the handshakes in flight, so opening thousands of
// connections does not overrun the server's listen backlog.
const dialConcurrency = 32

// benchHTTPClient returns the HTTP client for handshakes and POSTs: its
// own transport, so that the bench's connections never share a pool with
// anything else, keeping up to idle connections alive, each new
// connection from the next of sources (none: the kernel's choice).
func benchHTTPClient(idle int, sources sourceAddrs) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         sources.dialContext(10 * time.Second),
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     time.Minute,
	}}
}

// dialWS opens one WebSocket connection, with a clear error when the
// server refuses the handshake.
func dialWS(ctx context.Context, hc *http.Client, url string, readLimit int64) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, fmt.Errorf("failed to connect to %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil, fmt.Errorf("failed to connect to %s: %w", url, err)
	}
	ws.SetReadLimit(readLimit)
	return ws, nil
}

// dialAll opens a connection to each of urls, dialConcurrency at a time.
// conns[i] is nil where dialing failed; errs counts failures and first is
// the first error.
func dialAll(ctx context.Context, hc *http.Client, urls []string, readLimit int64) (conns []*websocket.Conn, errs int, first error) {
	conns = make([]*websocket.Conn, len(urls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialConcurrency)
	for i, u := range urls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, err := dialWS(ctx, hc, u, readLimit)
			if err != nil {
				mu.Lock()
				errs++
				if first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
			conns[i] = ws
		})
	}
	wg.Wait()
	return conns, errs, first
}

// closeAll closes every connection without a close handshake.
func closeAll(conns []*websocket.Conn) {
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
}

// targetURL returns the URL of pattern and topic on server, with
// ?envelope=1 when asked.
func targetURL(server, pattern, topic string, envelope bool) string {
	var q url.Values
	if envelope {
		q = url.Values{"envelope": {"1"}}
	}
	return client.URL(server, pattern, topic, q)
}
