package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func newSaramaAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	ca, err := sarama.NewClusterAdmin([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	return ca
}

// Sarama's ClusterAdmin at Version 4.3: topics, configs (legacy and incremental),
// partitions, offsets, records deletion, cluster and log dirs.
func TestSaramaClusterAdminTopics(t *testing.T) {
	ca := newSaramaAdmin(t)
	topic := uniqueName(t, "sarama-adm")
	retention := "7200000"
	if err := ca.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := ca.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	topics, err := ca.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 2 || d.ConfigEntries["retention.ms"] == nil || *d.ConfigEntries["retention.ms"] != retention {
		t.Fatalf("ListTopics: %+v (present %v)", d, ok)
	}
	md, err := ca.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 2 {
		t.Fatalf("DescribeTopics: %v %+v", err, md)
	}

	entry := func(name string) *sarama.ConfigEntry {
		entries, err := ca.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			t.Fatal(err)
		}
		for i := range entries {
			if entries[i].Name == name {
				return &entries[i]
			}
		}
		t.Fatalf("DescribeConfig lacks %s", name)
		return nil
	}
	if e := entry("retention.ms"); e.Value != retention || e.Source != sarama.SourceTopic {
		t.Fatalf("retention.ms: %+v", e)
	}
	compact := "compact,delete"
	if err := ca.AlterConfig(sarama.TopicResource, topic, map[string]*string{"cleanup.policy": &compact}, false); err != nil {
		t.Fatalf("AlterConfig: %v", err)
	}
	if e := entry("cleanup.policy"); e.Value != compact {
		t.Fatalf("cleanup.policy after AlterConfig: %+v", e)
	}
	if e := entry("retention.ms"); e.Value == retention {
		t.Fatal("legacy AlterConfig kept retention.ms, which it left out")
	}
	segment := "1048576"
	if err := ca.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"segment.bytes":  {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &segment},
		"cleanup.policy": {Operation: sarama.IncrementalAlterConfigsOperationSubtract, Value: strp("compact")},
	}, false); err != nil {
		t.Fatalf("IncrementalAlterConfig: %v", err)
	}
	if e := entry("segment.bytes"); e.Value != segment {
		t.Fatalf("segment.bytes: %+v", e)
	}
	if e := entry("cleanup.policy"); e.Value != "delete" {
		t.Fatalf("cleanup.policy after subtracting compact: %q", e.Value)
	}

	if err := ca.CreatePartitions(topic, 4, nil, false); err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}
	waitFor(t, "4 partitions", 10*time.Second, func() bool {
		md, err := ca.DescribeTopics([]string{topic})
		return err == nil && len(md) == 1 && len(md[0].Partitions) == 4
	})

	// Ten records on partition 3, then delete the first six.
	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 3, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			prod.Close()
			t.Fatal(err)
		}
	}
	prod.Close()
	if err := ca.DeleteRecords(topic, map[int32]int64{3: 6}); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	offsets, err := ca.ListOffsets(map[string]map[int32]int64{topic: {3: sarama.OffsetOldest}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := offsets[topic][3]; r == nil || r.Err != sarama.ErrNoError || r.Offset != 6 {
		t.Fatalf("oldest offset after DeleteRecords: %+v", r)
	}
	offsets, err = ca.ListOffsets(map[string]map[int32]int64{topic: {3: sarama.OffsetNewest}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := offsets[topic][3]; r == nil || r.Offset != 10 {
		t.Fatalf("newest offset: %+v", r)
	}

	brokers, controller, err := ca.DescribeCluster()
	if err != nil || len(brokers) != 1 || brokers[0].Addr() != shared.Addr || controller < 0 {
		t.Fatalf("DescribeCluster: %v %d brokers controller %d", err, len(brokers), controller)
	}
	dirs, err := ca.DescribeLogDirs([]int32{brokers[0].ID()})
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	for _, d := range dirs[brokers[0].ID()] {
		for _, tp := range d.Topics {
			if tp.Topic == topic {
				for _, p := range tp.Partitions {
					if p.PartitionID == 3 {
						size = p.Size
					}
				}
			}
		}
	}
	if size <= 0 {
		t.Fatalf("DescribeLogDirs: partition 3 size %d", size)
	}

	if err := ca.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	waitFor(t, "the topic to be gone", 10*time.Second, func() bool {
		topics, err := ca.ListTopics()
		_, still := topics[topic]
		return err == nil && !still
	})
}

// Consumer group offsets through Sarama's admin: alter, list, describe, delete one
// partition's offset, delete the group.
func TestSaramaClusterAdminGroups(t *testing.T) {
	ca := newSaramaAdmin(t)
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "sarama-admg")
	createTopic(t, adm, topic, 2, nil)
	group := uniqueName(t, "sarama-admg")
	if _, err := ca.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{
		topic: {0: {Offset: 0, Metadata: "zero"}, 1: {Offset: 0, Metadata: "one"}},
	}, nil); err != nil {
		t.Fatalf("AlterConsumerGroupOffsets: %v", err)
	}
	resp, err := ca.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, md := range map[int32]string{0: "zero", 1: "one"} {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != 0 || b.Metadata != md {
			t.Fatalf("partition %d: %+v", p, b)
		}
	}
	desc, err := ca.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].Err != sarama.ErrNoError || desc[0].State != "Empty" {
		t.Fatalf("DescribeConsumerGroups: %v %+v", err, desc)
	}
	if err := ca.DeleteConsumerGroupOffset(group, topic, 1); err != nil {
		t.Fatalf("DeleteConsumerGroupOffset: %v", err)
	}
	resp, err = ca.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBlock(topic, 1); b != nil && b.Offset >= 0 {
		t.Fatalf("partition 1's offset survived its deletion: %+v", b)
	}
	if b := resp.GetBlock(topic, 0); b == nil || b.Offset != 0 {
		t.Fatalf("partition 0's offset: %+v", b)
	}
	if err := ca.DeleteConsumerGroup(group); err != nil {
		t.Fatalf("DeleteConsumerGroup: %v", err)
	}
	groups, err := ca.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; ok {
		t.Fatal("deleted group still listed")
	}
}

// Sarama's transactional producer: an aborted transaction is invisible to a
// read_committed Sarama consumer, the committed one is read in full.
func TestSaramaTransactions(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "sarama-txn")
	createTopic(t, adm, topic, 1, nil)
	cfg := saramaConfig()
	cfg.Producer.Transaction.ID = uniqueName(t, "sarama-txid")
	prod, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	send := func(prefix string, count int, commit bool) {
		if err := prod.BeginTxn(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		for i := 0; i < count; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("%s-%02d", prefix, i))}); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	send("abort", 7, false)
	send("commit", 5, true)
	send("abort2", 3, false)
	send("commit2", 2, true)

	ccfg := saramaConfig()
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	consumer, err := sarama.NewConsumer([]string{shared.Addr}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.AsyncClose()
	want := []string{"commit-00", "commit-01", "commit-02", "commit-03", "commit-04", "commit2-00", "commit2-01"}
	for i, w := range want {
		select {
		case m := <-pc.Messages():
			if string(m.Value) != w {
				t.Fatalf("read_committed message %d = %q, want %q", i, m.Value, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("read_committed: only %d of %d messages", i, len(want))
		}
	}
	select {
	case m := <-pc.Messages():
		t.Fatalf("extra message %q", m.Value)
	case <-time.After(500 * time.Millisecond):
	}
}
