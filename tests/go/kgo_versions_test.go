package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// franz-go pinned to the request versions of older Kafka releases (kgo.MaxVersions), so the
// broker's decoders and encoders of each older version are exercised: topic creation,
// produce with keys and headers, a classic group reading and committing, offsets listed and
// fetched, the group described, a transaction committed, the topic deleted.
func TestKgoPinnedProtocolVersions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions
	}{
		{"0.11", kversion.V0_11_0()}, {"1.0", kversion.V1_0_0()}, {"1.1", kversion.V1_1_0()},
		{"2.0", kversion.V2_0_0()}, {"2.1", kversion.V2_1_0()}, {"2.3", kversion.V2_3_0()},
		{"2.4", kversion.V2_4_0()}, {"2.5", kversion.V2_5_0()}, {"2.7", kversion.V2_7_0()},
		{"3.0", kversion.V3_0_0()}, {"3.3", kversion.V3_3_0()}, {"3.7", kversion.V3_7_0()},
		{"4.0", kversion.V4_0_0()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pin := kgo.MaxVersions(tc.versions)
			adm := kadm.NewClient(newClient(t, shared.Addr, pin))
			ctx := testCtx(t, 60*time.Second)
			topic := uniqueName(t, "v")
			createTopic(t, adm, topic, 2, nil)

			prod := newClient(t, shared.Addr, pin, kgo.ProducerBatchCompression(kgo.GzipCompression()))
			var want []*kgo.Record
			for i := 0; i < 60; i++ {
				want = append(want, testRecord(topic, i))
			}
			if err := prod.ProduceSync(ctx, want...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			group := uniqueName(t, "vg")
			cons := newClient(t, shared.Addr, pin, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.Balancers(kgo.RangeBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit())
			got := consumeN(t, cons, len(want), 30*time.Second)
			checkRoundTrip(t, want, got)
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil || described[group].Err != nil || described[group].State != "Stable" || len(described[group].Members) != 1 {
				t.Fatalf("describe group: %v %+v", err, described[group])
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			ends.Each(func(lo kadm.ListedOffset) {
				total += lo.Offset
				if c, ok := committed.Lookup(topic, lo.Partition); lo.Offset > 0 && (!ok || c.At != lo.Offset) {
					t.Fatalf("partition %d: committed %+v, end %d", lo.Partition, c, lo.Offset)
				}
			})
			if total != int64(len(want)) {
				t.Fatalf("end offsets add up to %d, want %d", total, len(want))
			}
			cons.Close()

			txn := newClient(t, shared.Addr, pin, kgo.TransactionalID(uniqueName(t, "vtx")), kgo.DefaultProduceTopic(topic))
			for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("txn-%v", commit))}).FirstErr(); err != nil {
					t.Fatalf("transactional produce: %v", err)
				}
				if err := txn.EndTransaction(ctx, commit); err != nil {
					t.Fatalf("end transaction: %v", err)
				}
			}
			rc := newClient(t, shared.Addr, pin, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			all := consumeN(t, rc, len(want)+1, 30*time.Second)
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			extra := rc.PollFetches(qctx)
			cancel()
			if n := len(extra.Records()); n > 0 {
				t.Fatalf("read_committed saw %d more records (the aborted one?)", n)
			}
			var txnRecords []string
			for _, r := range all {
				if string(r.Key) == "k" {
					txnRecords = append(txnRecords, string(r.Value))
				}
			}
			if len(txnRecords) != 1 || txnRecords[0] != fmt.Sprintf("txn-%v", kgo.TryCommit) {
				t.Fatalf("transactional records read committed: %v", txnRecords)
			}

			dels, err := adm.DeleteTopics(ctx, topic)
			if err != nil || dels[topic].Err != nil {
				t.Fatalf("delete topic: %v %+v", err, dels[topic])
			}
		})
	}
}
