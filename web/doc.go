// Package web serves Mercury's wire: WebSocket on /sub, /pub, /bus,
// /push and /pull followed by a topic, HTTP POST on /pub, /bus and /push,
// and /healthz. It decodes what clients send, hands it to the broker, and
// writes what the broker delivers.
//
// Each connection has one reader (its handler goroutine) and, only while
// frames are waiting, one writer that drains the connection's bounded
// outgoing queue and sends the whole batch with one system call. A
// connection whose queue overflows is closed with 1008 "slow consumer";
// publishers and other subscribers never wait for it.
package web
