package web

import (
	"fmt"

	"github.com/coder/websocket"

	"github.com/mercury-broker/mercury/web/auth"
)

// A connection keeps the grant it was opened with. When its token expires
// it is closed with 4401 "token expired"; before that, a client in
// envelope mode may send a fresh token, {"$token":"…"}, answered with
// {"ok":"token"} or an error frame. New rights apply at once: a
// connection its new token no longer covers is closed with 4403.

// Close codes of authorization, in the range applications may use.
const (
	closeTokenExpired websocket.StatusCode = 4401
	closeForbidden    websocket.StatusCode = 4403
)

// currentGrant returns what the connection may do now.
func (c *conn) currentGrant() *auth.Grant { return c.grant.Load() }

// armExpiry sets the close for the expiry of the connection's grant: a
// timer, no goroutine while it waits.
func (c *conn) armExpiry() {
	g := c.grant.Load()
	if c.expiry == nil {
		if g.Expires.IsZero() {
			return
		}
		c.expiry = newDeadlineTimer(c.expire)
	}
	c.expiry.setWall(g.Expires)
}

// expire closes the connection: its grant has expired.
func (c *conn) expire() {
	c.s.log.Info("connection closed: token expired", "remote", c.remote, "pattern", c.pattern.String(),
		"topic", c.topic, "subject", c.grant.Load().Subject)
	c.closeWith(closeTokenExpired, "token expired")
}

// refresh puts a fresh credential in force.
func (c *conn) refresh(cred string) {
	g, aerr := c.s.verify(c.s.auth.Load(), cred) // without auth: everyone
	if aerr != nil {
		aerr.Topic = string(c.topic)
		c.sendError(aerr) // the connection keeps its grant until it expires
		return
	}
	a := actionOf(c.pattern)
	if !g.Rights.Allows(a, c.topic) {
		c.s.log.Info("connection closed: new token does not cover it", "remote", c.remote, "pattern", c.pattern.String(),
			"topic", c.topic, "subject", g.Subject)
		c.closeWith(closeForbidden, fmt.Sprintf("token no longer allows %s on %s", a, c.topic))
		return
	}
	c.grant.Store(g)
	c.armExpiry()
	c.sendText([]byte(`{"ok":"token"}`))
}

func (c *conn) stopExpiry() { c.expiry.stop() }
