package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A topic deleted and created again under the same name gets a new topic id and an empty
// log; once the application purges the old topic from its clients, the producer writes to
// the new one and the consumer reads it from the start (Produce and Fetch by topic id).
func TestKgoTopicRecreatedUnderConsumer(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 90*time.Second)
	topic := uniqueName(t, "recreate")
	createTopic(t, adm, topic, 1, nil)
	prod := newClient(t, shared.Addr, kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(30*time.Second))
	for i := 0; i < 5; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("old-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	old := consumeN(t, cons, 5, 20*time.Second)
	oldID := topicID(t, topic)
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the topic to be gone", 10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx)
		_, still := td[topic]
		return err == nil && !still
	})
	createTopic(t, adm, topic, 1, nil)
	if topicID(t, topic) == oldID {
		t.Fatalf("the recreated topic kept topic id %v", oldID)
	}
	// A Fetch by the old id is answered UNKNOWN_TOPIC_ID, not with the new topic's data.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 13
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 10
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = oldID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.PartitionMaxBytes = 1 << 20
	fp.CurrentLeaderEpoch = -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	raw := newClient(t, shared.Addr)
	fresp, err := fetch.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var code int16 = -2
	if fresp.ErrorCode != 0 {
		code = fresp.ErrorCode
	} else if len(fresp.Topics) == 1 && len(fresp.Topics[0].Partitions) == 1 {
		code = fresp.Topics[0].Partitions[0].ErrorCode
	}
	if code != kerr.UnknownTopicID.Code {
		t.Fatalf("Fetch v13 by the deleted topic's id: error %d, want UNKNOWN_TOPIC_ID (%d)", code, kerr.UnknownTopicID.Code)
	}

	// franz-go 1.22 keeps failing a recreated topic with UNKNOWN_TOPIC_ID (so old-topic
	// records never land in the new one) until the application purges it.
	prod.PurgeTopicsFromClient(topic)
	cons.PurgeTopicsFromClient(topic)
	cons.AddConsumeTopics(topic)
	for i := 0; i < 3; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("new-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce to the recreated topic: %v", err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if lo, _ := ends.Lookup(topic, 0); lo.Offset != 3 {
		t.Fatalf("recreated topic's end offset %d, want 3 (a fresh log)", lo.Offset)
	}
	var fresh []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(fresh) < 3 && time.Now().Before(deadline) {
		pctx := testCtx(t, time.Second)
		fetches := cons.PollFetches(pctx)
		fresh = append(fresh, fetches.Records()...)
	}
	if len(fresh) != 3 {
		t.Fatalf("after the recreate the consumer read %d records, want the 3 new ones", len(fresh))
	}
	for i, r := range fresh {
		if string(r.Value) != fmt.Sprintf("new-%d", i) || r.Offset != int64(i) {
			t.Fatalf("record %d: %q at %d", i, r.Value, r.Offset)
		}
	}
	if string(old[4].Value) != "old-4" {
		t.Fatalf("old records: last %q", old[4].Value)
	}
}

// topicID asks the broker directly (kadm's ListTopics may answer from kgo's metadata cache).
func topicID(t *testing.T, topic string) [16]byte {
	t.Helper()
	cl := newClient(t, shared.Addr)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %s: %v %+v", topic, err, resp)
	}
	return resp.Topics[0].TopicID
}
