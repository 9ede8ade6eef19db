package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercury-broker/mercury/web/client"
)

// modelConn is one real puller connection of the queue model. Its pump
// reads every frame as soon as it arrives (unless paused, to stop reading
// mid-batch) and tells the model.
type modelConn struct {
	mp     *modelPuller
	model  *queueModel
	conn   *client.Conn
	local  string        // its address, as the broker sees it
	frames atomic.Uint64 // frames read

	node        int           // the broker it is connected to
	exclusive   bool          // connected with ?exclusive=1 or ?takeover=1
	expectClose atomic.Bool   // we close it, or expect the broker to
	errs        chan uint64   // ids answered unknown_id; 0 is the barrier
	done        chan struct{} // closed when the pump stopped
	err         error         // why, once done

	pauseMu sync.Mutex
	paused  chan struct{} // non-nil while paused; closed to resume
}

// dialModelConn connects a puller; refused: the broker is expected to
// close it at once.
func dialModelConn(model *queueModel, mp *modelPuller, url string, refused bool) (*modelConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The connection's own address names it in GET /api/connections.
	var local string
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}}
	defer transport.CloseIdleConnections()
	c, err := client.Dial(ctx, url, &client.Options{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		return nil, err
	}
	mc := &modelConn{mp: mp, model: model, conn: c, local: local, errs: make(chan uint64, 1024), done: make(chan struct{})}
	mc.expectClose.Store(refused)
	go mc.pump()
	return mc, nil
}

func (mc *modelConn) pump() {
	defer close(mc.done)
	for {
		mc.waitResumed()
		f, err := mc.conn.Read(context.Background())
		if err != nil {
			mc.err = err
			mc.model.pullerClosed(mc.mp)
			if !mc.expectClose.Load() {
				mc.model.mu.Lock()
				mc.model.violate("puller %d closed by the broker while reading as fast as it can: %d %q (%v)",
					mc.mp.id, client.CloseStatus(err), client.CloseReason(err), err)
				mc.model.mu.Unlock()
			}
			return
		}
		mc.frames.Add(1)
		mc.frame(f.Data)
	}
}

// frame hands one frame to the model: a delivery, or an error answer.
func (mc *modelConn) frame(data []byte) {
	if !mc.mp.env {
		mc.deliver(data, 0, 0)
		return
	}
	var e struct {
		ID      uint64          `json:"id"`
		Attempt int             `json:"attempt"`
		Data    json.RawMessage `json:"data"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		mc.violate("puller %d got a frame that is no envelope: %.200q", mc.mp.id, data)
		return
	}
	if e.Error != nil {
		var id uint64
		if e.Error.Code != "unknown_id" {
			mc.violate("puller %d got an error frame: %s %s", mc.mp.id, e.Error.Code, e.Error.Message)
			return
		}
		if _, err := fmt.Sscanf(e.Error.Message, "no delivery %d", &id); err != nil {
			mc.violate("puller %d: unknown_id without an id: %q", mc.mp.id, e.Error.Message)
			return
		}
		mc.errs <- id
		return
	}
	mc.deliver(e.Data, e.ID, e.Attempt)
}

func (mc *modelConn) deliver(data []byte, id uint64, attempt int) {
	var body struct {
		M int `json:"m"`
	}
	if err := json.Unmarshal(data, &body); err != nil || body.M == 0 {
		mc.violate("puller %d got a message that was never pushed: %.200q", mc.mp.id, data)
		return
	}
	mc.model.delivered(mc.mp, body.M, id, attempt)
}

func (mc *modelConn) violate(format string, args ...any) {
	mc.model.mu.Lock()
	defer mc.model.mu.Unlock()
	mc.model.violate(format, args...)
}

func (mc *modelConn) pause() {
	mc.pauseMu.Lock()
	defer mc.pauseMu.Unlock()
	if mc.paused == nil {
		mc.paused = make(chan struct{})
	}
}

func (mc *modelConn) resume() {
	mc.pauseMu.Lock()
	defer mc.pauseMu.Unlock()
	if mc.paused != nil {
		close(mc.paused)
		mc.paused = nil
	}
}

func (mc *modelConn) waitResumed() {
	mc.pauseMu.Lock()
	ch := mc.paused
	mc.pauseMu.Unlock()
	if ch != nil {
		<-ch
	}
}

// leaving tells the model, before the broker can know, that the puller
// is leaving: what it holds may go to others from now on.
func (mc *modelConn) leaving() {
	mc.expectClose.Store(true)
	mc.model.pullerClosed(mc.mp)
}

// closeNormally closes with a close handshake and waits for the pump;
// quiet: the broker had nothing in flight to it (see pullerLeft).
func (mc *modelConn) closeNormally(quiet bool) {
	mc.expectClose.Store(true)
	mc.model.pullerLeft(mc.mp, quiet)
	mc.conn.Close()
	mc.wait()
}

// kill stops reading for a moment, as a worker stuck mid-batch, then
// resets the connection without a close handshake.
func (mc *modelConn) kill(stall time.Duration) {
	mc.expectClose.Store(true)
	mc.pause()
	time.Sleep(stall)
	mc.leaving()
	mc.conn.CloseNow()
	mc.resume()
	mc.wait()
}

func (mc *modelConn) wait() {
	select {
	case <-mc.done:
	case <-time.After(10 * time.Second):
		mc.conn.CloseNow()
		<-mc.done
	}
}

func (mc *modelConn) closed() bool {
	select {
	case <-mc.done:
		return true
	default:
		return false
	}
}

// settle sends an ack or nack for each of ms, then a barrier ({"ack":0},
// always unknown), and waits for the barrier's answer: every settle the
// broker refused was answered before it.
func (mc *modelConn) settle(ms []*modelMsg, ack bool, delay time.Duration) {
	for len(mc.errs) > 0 {
		<-mc.errs
	}
	sent := make([]time.Time, len(ms))
	ctx := context.Background()
	for i, m := range ms {
		frame := fmt.Sprintf(`{"ack":%d}`, m.seq)
		if !ack {
			mc.model.nackSending(mc.mp, m)
			frame = fmt.Sprintf(`{"nack":%d,"delay":"%s","error":"model nack"}`, m.seq, delay)
		}
		sent[i] = time.Now()
		mc.conn.WriteText(ctx, frame)
	}
	mc.conn.WriteText(ctx, `{"ack":0}`)
	refused := map[uint64]bool{}
	answered := false
	timeout := time.After(10 * time.Second)
wait:
	for {
		select {
		case id := <-mc.errs:
			if id == 0 {
				answered = true
				break wait
			}
			refused[id] = true
		case <-mc.done:
			break wait
		case <-timeout:
			mc.violate("puller %d: no answer to a settle barrier within 10s", mc.mp.id)
			break wait
		}
	}
	for len(mc.errs) > 0 { // answered before the connection ended
		if id := <-mc.errs; id == 0 {
			answered = true
		} else {
			refused[id] = true
		}
	}
	for i, m := range ms {
		mc.model.settleResult(mc.mp, m, ack, delay, sent[i], refused[m.seq], !answered && !refused[m.seq])
	}
}
