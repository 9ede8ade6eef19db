// Package client is the Go client of Mercury's wire, the one the mercury
// CLI and the end-to-end tests use. docs/clients.md is the guide; the
// examples show each task.
//
// The simplest way: Subscribe calls a function for each message and
// reconnects by itself, resuming from the last message it gave, so a
// broker restart with a durable bus loses nothing and repeats nothing
// (ExampleSubscribe); Pull calls a function for each job, acking it when
// the function returns nil and nacking it with the error otherwise
// (ExamplePull); Publish sends one message and returns its sequence
// number once the broker accepted it.
//
// Underneath, Dial opens one connection:
//
// Subscribe, in envelope mode, so each message carries its topic,
// sequence number, epoch and time (Example):
//
//	c, err := client.Dial(ctx, client.URL("ws://127.0.0.1:3000", "sub", "/livesys", nil), &client.Options{Envelope: true})
//	f, err := c.Read(ctx)
//	in, err := client.ParseIncoming(f.Data) // in.Message, or in.Gap
//
// Resume after a disconnection from the last message seen: dial with
// since=Seq and epoch=Epoch in the query; what was missed comes first, and
// a Gap says what is no longer kept (with Reset: the broker started
// afresh) (Example_resume).
//
// Publish with a confirm: Publish (an HTTP POST) returns the message's
// sequence number, or a *PostError carrying the broker's APIError. On a
// /pub, /bus or /push socket in envelope mode each frame is answered in
// order by Incoming.OK or Incoming.Error (Example_publishConfirmed).
//
// Pull reliably: a puller in envelope mode gets messages with an ID and
// an Attempt and settles each with Ack, or Nack to have it again later
// (Example_pull, Example_nack).
//
// Options.Token authenticates; TLSConfig and NewHTTPClient reach a broker
// whose certificate the system does not know. A Conn from Dial does not
// reconnect: loop over Dial with a backoff, resuming from the position you
// kept, as Subscribe does.
package client
