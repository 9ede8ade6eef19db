// Package client is Mercury's Go SDK, with the semantics of mercury.js,
// the browser and Node client: docs/clients.md is the guide, and the
// examples show each task.
//
// A Client is made with New and a broker's URL; it connects nothing until
// used:
//
//	m := client.New("ws://127.0.0.1:3000", &client.Config{Token: token})
//
//	// Every message on /livesys and below, in order, until ctx ends.
//	err := m.Subscribe(ctx, "/livesys", &client.SubscribeOptions{OnGap: …}, func(msg client.Message) error { … })
//
//	// Jobs: nil acks, an error nacks with it as the job's last error.
//	err := m.Pull(ctx, "/jobs", &client.PullOptions{Prefetch: 4}, func(job client.Job) error { … })
//
//	seq, err := m.Publish(ctx, "/livesys/42", data) // once confirmed; the broker's *APIError otherwise
//	seq, err := m.Push(ctx, "/jobs", data)
//
//	bus := m.Bus(ctx, "/room", &client.BusOptions{Echo: false}, func(msg client.Message) error { … })
//	seq, err := bus.Send(ctx, data)
//	bus.Close()
//
// Subscribe, Pull and Bus each hold one WebSocket in envelope mode and
// reconnect by themselves, with exponential backoff and jitter
// (Config.Backoff, Config.MaxBackoff); OnState hears connecting, open,
// reconnecting and closed. They return (Bus.Close returns) ctx's error
// when it ends, the function's error, or a refusal reconnecting cannot
// mend (a handshake refused with 400, 403 or 404; closes 4403, 4404,
// 4409).
//
// A subscription resumes from the last message its function was given
// (since=SEQ&epoch=E): a restart of a broker with a durable bus, or a
// move to another broker of a cluster, loses nothing and repeats nothing.
// SubscribeOptions.Since starts with a replay; OnGap hears of a real gap
// (history evicted, or a broker that started afresh: Gap.Reset). When
// the WebSocket handshake fails (a proxy that refuses upgrades) a
// subscription streams Server-Sent Events instead, and tries a WebSocket
// again when the stream ends. A bus peer reconnects live.
//
// A worker's job whose connection was lost before its function returned
// is not settled: the broker delivers it again, with the same ID.
//
// Config.GetToken refreshes the credential: a JWT is refreshed before it
// expires and sent in-band ({"$token":…}) on every open connection, so no
// connection is cut; any credential is fetched again after a 401 or a
// 4401 close.
//
// Publish and Push are HTTP requests: a message whose answer was lost is
// not sent again (it may have been accepted). Request and Presence ask
// agents and list them (docs/agents.md).
//
// Underneath, Dial opens one connection that does not reconnect, for
// tests and tools that speak the wire themselves: Conn.Read with
// ParseIncoming in envelope mode, Conn.Ack and Conn.Nack on a puller,
// PublishURL and Post to send by POST (ExampleDial, ExampleDial_resume,
// ExampleConn_Ack). TLSConfig and NewHTTPClient reach a broker whose
// certificate the system does not know.
package client
