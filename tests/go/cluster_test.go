package compat

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startCluster starts n nodes (each broker and controller voter) and waits until Metadata
// lists every broker; all are killed by PID when the test ends.
func startCluster(t *testing.T, n int) []*Broker {
	t.Helper()
	type ports struct{ kafka, raft int }
	var ps []ports
	var voters []string
	for i := 1; i <= n; i++ {
		k, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, ports{k, r})
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i, r))
	}
	root := t.TempDir()
	var nodes []*Broker
	t.Cleanup(func() {
		for i, b := range nodes {
			if t.Failed() {
				t.Logf("node %d log tail:\n%s", i+1, b.LogTail())
			}
			b.Kill()
		}
	})
	for i, p := range ps {
		b, err := LaunchBroker(filepath.Join(root, fmt.Sprintf("node%d", i+1)), p.kafka, p.raft, map[string]string{
			"node.id":                      fmt.Sprint(i + 1),
			"controller.quorum.voters":     strings.Join(voters, ","),
			"broker.session.timeout.ms":    "3000",
			"broker.heartbeat.interval.ms": "500",
			"replica.lag.time.max.ms":      "5000",
			"http.listener":                "",
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, b := range nodes {
		if err := b.WaitListening(deadline); err != nil {
			t.Fatal(err)
		}
	}
	// Every node must list every broker. Each poll asks each node directly with a fresh
	// client: kadm's BrokerMetadata answers from kgo's cached broker list, which keeps an
	// early partial answer (nodes register one by one) for minutes.
	waitFor(t, fmt.Sprintf("every node listing %d brokers", n), 60*time.Second, func() bool {
		for _, b := range nodes {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
			if err != nil {
				return false
			}
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{}
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := req.RequestWith(c, cl)
			cancel()
			cl.Close()
			if err != nil || len(resp.Brokers) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func clusterSeeds(nodes []*Broker) kgo.Opt {
	var addrs []string
	for _, b := range nodes {
		addrs = append(addrs, b.Addr)
	}
	return kgo.SeedBrokers(addrs...)
}

// A 3-node cluster with RF=3 topics: franz-go produces with acks=all to leaders spread over
// the nodes, a two-member group (coordinator on whichever node owns the group) reads it all,
// a GroupTransactSession copies it transactionally; then the node leading the most
// partitions is killed, and what was acknowledged is still read, nothing lost or doubled.
func TestKgoThreeNodeClusterSurvivesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	nodes := startCluster(t, 3)
	seeds := clusterSeeds(nodes)
	adm := kadm.NewClient(newClient(t, nodes[0].Addr, seeds))
	ctx := testCtx(t, 150*time.Second)
	topic, out := "replicated", "replicated-copy"
	for _, name := range []string{topic, out} {
		resp, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": strp("2")}, name)
		if err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
	}
	waitFor(t, "leaders on more than one node", 30*time.Second, func() bool {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false
		}
		leaders := map[int32]bool{}
		for _, p := range td[topic].Partitions {
			if p.Err != nil || len(p.ISR) != 3 {
				return false
			}
			leaders[p.Leader] = true
		}
		return len(leaders) > 1
	})

	prod := newClient(t, nodes[0].Addr, seeds, kgo.RequiredAcks(kgo.AllISRAcks()))
	var want []*kgo.Record
	for i := 0; i < 600; i++ {
		want = append(want, testRecordKeys(topic, i, 30))
	}
	if err := prod.ProduceSync(ctx, want[:300]...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	group := "cluster-group"
	a := newClient(t, nodes[1].Addr, seeds, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, a, 300, 60*time.Second)
	if err := a.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	checkRoundTrip(t, want[:300], got)

	// Transactional copy through the transaction coordinator of whichever node owns it.
	sess, err := kgo.NewGroupTransactSession(seeds, kgo.TransactionalID("cluster-copy"),
		kgo.ConsumerGroup("cluster-copy-group"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	copied := 0
	for copied < 300 {
		if ctx.Err() != nil {
			t.Fatalf("copied %d of 300", copied)
		}
		fetches := sess.PollRecords(ctx, 100)
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Headers: r.Headers}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			copied += len(recs)
		}
	}
	sess.Close()
	rc := newClient(t, nodes[2].Addr, seeds, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	copies := consumeN(t, rc, 300, 60*time.Second)
	var wantCopies []*kgo.Record
	for _, r := range want[:300] {
		wantCopies = append(wantCopies, &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers})
	}
	checkSameRecords(t, wantCopies, copies, true)

	// Kill the node leading the most partitions; acks=all writes go on to the new leaders.
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	led := map[int32]int{}
	for _, p := range td[topic].Partitions {
		led[p.Leader]++
	}
	victim := int32(1)
	for id, n := range led {
		if n > led[victim] {
			victim = id
		}
	}
	t.Logf("leaders per node %v; killing node %d", led, victim)
	nodes[victim-1].Kill()
	if err := prod.ProduceSync(ctx, want[300:]...).FirstErr(); err != nil {
		t.Fatalf("produce after the kill: %v", err)
	}
	survivor := nodes[0]
	if victim == 1 {
		survivor = nodes[1]
	}
	b := newClient(t, survivor.Addr, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	all := consumeN(t, b, 600, 60*time.Second)
	expectQuiet(t, b, 500*time.Millisecond)
	checkRoundTrip(t, want, all)
	// The group resumes at its commit on the surviving nodes.
	a.Close()
	c := newClient(t, survivor.Addr, seeds, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rest := consumeN(t, c, 300, 60*time.Second)
	expectQuiet(t, c, 500*time.Millisecond)
	checkSameRecords(t, want[300:], rest, false)
}
