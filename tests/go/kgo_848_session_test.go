package compat

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848: a member that stops heartbeating (a crashed process: it joined with a raw
// ConsumerGroupHeartbeat and went silent) is removed after group.consumer.session.timeout.ms,
// and its partitions go to the live franz-go member, which then reads every record.
func TestKgoNextGenSilentMemberExpires(t *testing.T) {
	b := startBroker(t, map[string]string{
		"group.consumer.session.timeout.ms":    "3000",
		"group.consumer.heartbeat.interval.ms": "500",
	})
	adm := newAdmin(t, b.Addr)
	ctx := testCtx(t, 90*time.Second)
	topic, group := "silent", "silent-g"
	createTopic(t, adm, topic, 4, nil)

	raw := newClient(t, b.Addr)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version = 1
	hb.Group = group
	hb.MemberID = "silent-member-0000000001"
	hb.MemberEpoch = 0
	hb.RebalanceTimeoutMillis = 5000
	hb.SubscribedTopicNames = []string{topic}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	assignor := "range"
	hb.ServerAssignor = &assignor
	resp, err := hb.RequestWith(ctx, raw)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("raw join: %v %+v", err, resp)
	}
	if resp.MemberEpoch <= 0 {
		t.Fatalf("raw join: member epoch %d", resp.MemberEpoch)
	}
	// Alone in the group, the silent member is given all four partitions: the live member
	// can only get them by the silent one's expiry.
	held := 0
	if resp.Assignment != nil {
		for _, tp := range resp.Assignment.Topics {
			held += len(tp.Partitions)
		}
	}
	if held != 4 {
		t.Fatalf("raw join: assigned %d partitions, want 4", held)
	}

	prod := newClient(t, b.Addr)
	var want []*kgo.Record
	for i := 0; i < 200; i++ {
		want = append(want, testRecordKeys(topic, i, 40))
	}
	if err := prod.ProduceSync(ctx, want...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	live := newClient(t, b.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.RangeBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	start := time.Now()
	got := consumeN(t, live, len(want), 60*time.Second)
	checkSameRecords(t, want, got, false)
	t.Logf("the live member had every partition after %s", time.Since(start).Round(100*time.Millisecond))
	described, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[group]
	if g.Err != nil || len(g.Members) != 1 || g.Members[0].MemberID == hb.MemberID {
		t.Fatalf("after the session timeout, members %+v (err %v), want only the live one", g.Members, g.Err)
	}
}
