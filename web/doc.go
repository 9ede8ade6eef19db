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
//
// Who may do what is decided with package web/auth: a request's credential
// (Authorization: Bearer, the mercury.token.<token> subprotocol or
// ?token=) is checked at the handshake, on every POST and for every
// published frame (authz.go); a connection is closed when its token
// expires (conn_auth.go). The admin API (admin.go) needs the admin right.
// Limits on connections, publish rate and idle time are in limits.go.
package web
