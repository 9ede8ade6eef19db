// Package client is the Go client of Mercury's wire: dial a pattern and a
// topic, read and write frames, and publish over HTTP.
//
//	c, err := client.Dial(ctx, client.URL("ws://127.0.0.1:3000", "sub", "/livesys", nil), nil)
//	f, err := c.Read(ctx) // f.Data, f.Binary
//
// In envelope mode (Options.Envelope) frames carry their topic, sequence
// number and time: ParseIncoming decodes them, and the answers a
// publisher gets ({"ok":SEQ}, {"error":…}); a puller settles what it
// took with Ack and Nack. Publish sends one message by POST and returns
// its sequence number. TLSConfig and NewHTTPClient reach a broker whose
// certificate the system does not know.
package client
