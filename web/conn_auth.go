package web

import (
	"fmt"
	"time"

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
// timer, no goroutine while it waits. Only the connection's handler
// goroutine calls it.
func (c *conn) armExpiry() {
	g := c.grant.Load()
	if g.Expires.IsZero() {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		return
	}
	d := time.Until(g.Expires)
	if c.expiry == nil {
		c.expiry = time.AfterFunc(d, c.expire)
		return
	}
	c.expiry.Reset(d)
}

// expire closes the connection if its grant has expired; a refresh may
// have raced with the timer.
func (c *conn) expire() {
	g := c.grant.Load()
	if g.Expires.IsZero() || time.Now().Before(g.Expires) {
		return
	}
	c.s.log.Info("connection closed: token expired", "remote", c.remote, "pattern", c.pattern.String(),
		"topic", c.topic, "subject", g.Subject)
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

func (c *conn) stopExpiry() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
}
