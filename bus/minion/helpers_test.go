package minion_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/mercury-broker/mercury/broker"
	"github.com/mercury-broker/mercury/bus/minion"
	"github.com/mercury-broker/mercury/bus/minion/miniontest"
	"github.com/mercury-broker/mercury/web"
	"github.com/mercury-broker/mercury/web/client"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// installed returns a database with Minion's tables and the bridge
// installed, and a connection to it.
func installed(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	db := miniontest.NewMinionDatabase(t)
	conn := miniontest.Connect(t, db)
	if _, err := minion.Install(ctxT(t), conn, ""); err != nil {
		t.Fatal(err)
	}
	return db, conn
}

// drain reads, builds and deletes every outbox row, as the bridge does but
// without a broker, checking each event against the schema. A committed
// row is readable once no transaction anywhere on the server could still
// write below it: another test's transaction (in another database) may
// hold it back for a moment, so drain waits until the outbox is empty.
func drain(t testing.TB, conn *pgx.Conn) []*minion.Event {
	t.Helper()
	ctx := ctxT(t)
	var database string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		t.Fatal(err)
	}
	ob := minion.NewOutbox("public")
	var out []*minion.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		changes, err := ob.Next(ctx, conn, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 {
			lag, err := ob.Lag(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if lag.Depth == 0 {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d outbox rows still not readable after 30s", lag.Depth)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		var ids []int64
		for _, c := range changes {
			e, err := minion.BuildEvent(c, minion.BuildInfo{Database: database, Schema: "public", Instance: "test"})
			if err != nil {
				t.Fatal(err)
			}
			validate(t, e)
			out = append(out, e)
			ids = append(ids, c.ID)
		}
		if err := ob.Delete(ctx, conn, ids); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// validate checks e against event.schema.json, formats asserted.
func validate(t testing.TB, e *minion.Event) {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		c.AssertFormat = true
		if schemaErr = c.AddResource("event.schema.json", bytes.NewReader(minion.EventSchema)); schemaErr != nil {
			return
		}
		schema, schemaErr = c.Compile("event.schema.json")
	})
	if schemaErr != nil {
		t.Fatalf("event.schema.json: %v", schemaErr)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(v); err != nil {
		t.Errorf("event %s (%s) does not match event.schema.json: %v\n%s", e.EventID, e.Type, err, b)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// startBroker runs Mercury's broker and web server in-process, keeping
// history messages of /audit/minion for replay, and returns its URL.
func startBroker(t testing.TB, history int) string {
	t.Helper()
	var ps []broker.Policy
	if history > 0 {
		ps = append(ps, broker.Policy{Bus: "/audit/minion", History: broker.History{Messages: history}})
	}
	pol, err := broker.NewPolicies(ps)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(broker.New(broker.Options{Policies: pol, Logger: quiet}), web.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	return ts.URL
}

// subscribeAll subscribes to everything the bridge publishes.
func subscribeAll(t testing.TB, brokerURL string) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctxT(t), brokerURL+"/sub/audit/minion", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}
