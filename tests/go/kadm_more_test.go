package compat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions and producers seen through the admin client: an open transaction is listed
// and described with its partition, DescribeProducers names the producer's last sequence.
func TestKadmTransactionsAndProducers(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 60*time.Second)
	topic := uniqueName(t, "adm-txn")
	createTopic(t, adm, topic, 1, nil)
	txid := uniqueName(t, "adm-txid")
	cl := newClient(t, shared.Addr, kgo.TransactionalID(txid), kgo.DefaultProduceTopic(topic))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid := recs[0].ProducerID

	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := listed[txid]
	if !ok || l.State != "Ongoing" || l.ProducerID != pid {
		t.Fatalf("ListTransactions: %+v (present %v), want Ongoing with producer %d", l, ok, pid)
	}
	described, err := adm.DescribeTransactions(ctx, txid)
	if err != nil {
		t.Fatal(err)
	}
	d := described[txid]
	if d.Err != nil || d.State != "Ongoing" || d.ProducerID != pid || len(d.Topics[topic]) != 1 {
		t.Fatalf("DescribeTransactions: %+v", d)
	}
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	producers.EachProducer(func(p kadm.DescribedProducer) {
		if p.ProducerID == pid {
			found = true
			if p.LastSequence != 4 || p.CurrentTxnStartOffset != 0 {
				t.Errorf("DescribeProducers: %+v, want last sequence 4 and the transaction starting at 0", p)
			}
		}
	})
	if !found {
		t.Fatalf("DescribeProducers lacks producer %d: %+v", pid, producers)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the transaction to be CompleteCommit", 10*time.Second, func() bool {
		described, err := adm.DescribeTransactions(ctx, txid)
		return err == nil && described[txid].State == "CompleteCommit"
	})
}

// OffsetDelete removes one partition's committed offset from an empty group.
func TestKadmDeleteOffsets(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 30*time.Second)
	topic := uniqueName(t, "offdel")
	createTopic(t, adm, topic, 2, nil)
	group := uniqueName(t, "offdel-g")
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("delete offsets: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup(topic, 0); !ok {
		t.Fatal("partition 0's offset went too")
	}
	if o, ok := fetched.Lookup(topic, 1); ok && o.At >= 0 {
		t.Fatalf("partition 1's offset survived: %+v", o)
	}
}

// Log dirs, leader epochs and client quotas through kadm.
func TestKadmLogDirsEpochsQuotas(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 30*time.Second)
	topic := uniqueName(t, "logdirs")
	createTopic(t, adm, topic, 1, nil)
	prod := newClient(t, shared.Addr, kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("x", 1000))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("log dir %s: %v", d.Dir, d.Err)
		}
		if p, ok := d.Topics[topic][0]; ok {
			size = p.Size
		}
	})
	if size < 1000 {
		t.Fatalf("log dir size of %s/0 = %d, want at least the 1000-byte record", topic, size)
	}

	var req kadm.OffsetForLeaderEpochRequest
	req.Add(topic, 0, 0)
	epochs, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := epochs[topic][0]; !ok || o.Err != nil || o.EndOffset != 1 {
		t.Fatalf("OffsetForLeaderEpoch: %+v (present %v), want end offset 1", o, ok)
	}

	user := uniqueName(t, "quota-user")
	rate := 1048576.0
	altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range altered {
		if a.Err != nil {
			t.Fatalf("alter quota: %v %s", a.Err, a.ErrMessage)
		}
	}
	quotas, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &user, MatchType: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(quotas) != 1 || len(quotas[0].Values) != 1 || quotas[0].Values[0].Value != rate {
		t.Fatalf("described quotas %+v", quotas)
	}
}

// Producing to a missing topic with auto-creation off, and a record over max.message.bytes,
// fail with the Kafka error a client can act on.
func TestKgoProduceErrors(t *testing.T) {
	b := startBroker(t, map[string]string{"auto.create.topics.enable": "false"})
	adm := newAdmin(t, b.Addr)
	ctx := testCtx(t, 60*time.Second)
	topic := "small-records"
	createTopic(t, adm, topic, 1, map[string]*string{"max.message.bytes": strp("20000")})

	cl := newClient(t, b.Addr, kgo.RecordDeliveryTimeout(3*time.Second), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "no-such-topic", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	big := make([]byte, 30000)
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("30000-byte record to a 20000-byte topic: %v, want MESSAGE_TOO_LARGE", err)
	}
	near := make([]byte, 19000)
	for i := range near {
		near[i] = byte(i * 7)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: near}).FirstErr(); err != nil {
		t.Fatalf("19000-byte record: %v", err)
	}
	cons := newClient(t, b.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, 1, 20*time.Second)
	if string(got[0].Value) != string(near) || got[0].Offset != 0 {
		t.Fatalf("read back %d bytes at %d", len(got[0].Value), got[0].Offset)
	}
	if _, err := adm.ListTopics(ctx, "no-such-topic"); err != nil {
		t.Fatal(err)
	}
	td, _ := adm.ListTopics(ctx)
	if _, ok := td["no-such-topic"]; ok {
		t.Fatal("a produce created a topic with auto-creation off")
	}
}
