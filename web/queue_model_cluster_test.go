package web

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mercury-broker/mercury/bus/nats/natstest"
)

// The queue model against brokers clustered on NATS JetStream:
//
//	go test -run TestQueueModelCluster ./web/                   the CI seeds, on a
//	                            three-server cluster of bus/nats/natstest (embedded,
//	                            or MERCURY_TEST_NATS_BIN's nats-server)
//	go test -run 'TestQueueModel$' ./web/ -model.cluster=3 -model.duration=15m -timeout=0
//	                            random seeds against the NATS at -model.nats
//	                            (default nats://127.0.0.1:4222; natstest: a cluster
//	                            of bus/nats/natstest, as the CI seeds)
//	-model.logs=DIR             keeps each broker's log in DIR (a repeated delivery
//	                            is logged as "NATS delivered a queued message again")

// modelClusterCISeeds run in CI against two brokers: seeds with few
// broker kills, as each costs a puller lease (15 s) at most.
var modelClusterCISeeds = []uint64{22, 109}

// modelClusterCILen is the length of the CI seeds' operation lists.
const modelClusterCILen = 40

func TestQueueModelCluster(t *testing.T) {
	if *modelSeedFlag != "" || *modelOpsFlag != "" || *modelDurationFlag != "" || *modelBinaryFlag || *modelClusterFlag > 0 {
		t.Skip("-model flags given: TestQueueModel runs them")
	}
	c := natstest.Start(t)
	defer setModelFlags(2, strings.Join(c.URLs(), ","))()
	buildModelBinary(t)
	var total modelCounts
	start := time.Now()
	for _, seed := range modelClusterCISeeds {
		if counts, ok := runModelCase(t, seed, genOps(seed, modelClusterCILen)); ok {
			total = addCounts(total, counts)
		}
	}
	t.Logf("queue model on a cluster of 2 brokers, NATS %s, seeds %v (%d operations each), %s: %s",
		natsName(c), modelClusterCISeeds, modelClusterCILen, time.Since(start).Round(time.Second), total)
}

// setModelFlags points the model at a cluster of n brokers on nats, and
// returns what puts the flags back.
func setModelFlags(n int, nats string) func() {
	oldN, oldNATS := *modelClusterFlag, *modelNATSFlag
	*modelClusterFlag, *modelNATSFlag = n, nats
	return func() { *modelClusterFlag, *modelNATSFlag = oldN, oldNATS }
}

// startModelNATS starts a natstest cluster for -model.nats=natstest.
func startModelNATS(t *testing.T) {
	if *modelClusterFlag > 0 && *modelNATSFlag == "natstest" {
		c := natstest.Start(t)
		*modelNATSFlag = strings.Join(c.URLs(), ",")
		t.Cleanup(func() { *modelNATSFlag = "natstest" }) // -count=N starts a cluster each time
		t.Logf("NATS: %s", natsName(c))
	}
}

func natsName(c *natstest.Cluster) string {
	if c.Binary() != "" {
		return c.Binary()
	}
	return "embedded"
}

// dropModelStreams deletes the streams and key-value buckets of this
// process's model clusters from the NATS at -model.nats, once a run is
// over: each run makes its own (a cluster name of its own), each stream
// reserving its max_bytes, and on a shared server they would pile up until
// JetStream refuses more ("insufficient storage resources").
func dropModelStreams(t *testing.T) {
	if *modelClusterFlag == 0 {
		return
	}
	nc, err := nats.Connect(*modelNATSFlag)
	if err != nil {
		t.Logf("failed to drop the model's streams: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Logf("failed to drop the model's streams: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := strings.ToUpper(fmt.Sprintf("model-%d-", os.Getpid()%100000))
	names := js.StreamNames(ctx)
	var drop []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) || strings.HasPrefix(name, "KV_"+prefix) {
			drop = append(drop, name)
		}
	}
	for _, name := range drop {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Logf("failed to drop stream %s: %v", name, err)
		}
	}
}
