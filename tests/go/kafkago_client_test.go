package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// kafka-go's Client speaks its own encoding of each API (package protocol): topics,
// partitions, offsets, configs, groups and metadata through it, checked against kadm.
func TestKafkaGoClientAdmin(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 60*time.Second)
	cl := &kafka.Client{Addr: kafka.TCP(shared.Addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	topic := uniqueName(t, "kafkago-adm")

	av, err := cl.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err != nil || av.Error != nil || len(av.ApiKeys) < 20 {
		t.Fatalf("ApiVersions: %v %+v", err, av)
	}

	created, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.bytes", ConfigValue: "1048576"}},
	}}})
	if err != nil || created.Errors[topic] != nil {
		t.Fatalf("CreateTopics: %v %+v", err, created)
	}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != topic || len(md.Topics[0].Partitions) != 2 || md.Topics[0].Error != nil {
		t.Fatalf("Metadata: %+v", md.Topics)
	}
	if len(md.Brokers) != 1 || fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port) != shared.Addr || md.ClusterID == "" {
		t.Fatalf("Metadata brokers %+v cluster %q", md.Brokers, md.ClusterID)
	}

	cp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}}})
	if err != nil || cp.Errors[topic] != nil {
		t.Fatalf("CreatePartitions: %v %+v", err, cp)
	}

	waitFor(t, "3 partitions in metadata", 10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx, topic)
		return err == nil && len(td[topic].Partitions) == 3
	})
	// Its own Transport: the default one caches metadata (6 s) and still holds 2 partitions.
	w := &kafka.Writer{Addr: kafka.TCP(shared.Addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	counts := map[int]int64{}
	for _, m := range msgs {
		counts[fnvPartition(m.Key, 3)]++
	}
	lo, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0), kafka.FirstOffsetOf(1), kafka.LastOffsetOf(1), kafka.FirstOffsetOf(2), kafka.LastOffsetOf(2)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range lo.Topics[topic] {
		if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != counts[po.Partition] {
			t.Fatalf("ListOffsets partition %d: %+v, want 0..%d", po.Partition, po, counts[po.Partition])
		}
	}

	dc, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.bytes"},
	}}})
	if err != nil || len(dc.Resources) != 1 || dc.Resources[0].Error != nil {
		t.Fatalf("DescribeConfigs: %v %+v", err, dc)
	}
	if e := dc.Resources[0].ConfigEntries; len(e) != 1 || e[0].ConfigValue != "1048576" || e[0].IsDefault {
		t.Fatalf("retention.bytes: %+v", e)
	}
	iac, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.bytes", Value: "2097152", ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	if err != nil || len(iac.Resources) != 1 || iac.Resources[0].Error != nil {
		t.Fatalf("IncrementalAlterConfigs: %v %+v", err, iac)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(topic, nil)
	if v, _ := configValue(t, rc, "retention.bytes"); v != "2097152" {
		t.Fatalf("retention.bytes after kafka-go's incremental alter: %q", v)
	}

	// A group's offsets, committed by kadm, read through kafka-go's OffsetFetch.
	group := uniqueName(t, "kafkago-admg")
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{shared.Addr}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond})
	for i := 0; i < 30; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			t.Fatal(err)
		}
	}
	lg, err := cl.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || lg.Error != nil {
		t.Fatalf("ListGroups: %v %+v", err, lg)
	}
	var listed bool
	for _, g := range lg.Groups {
		listed = listed || (g.GroupID == group && g.ProtocolType == "consumer")
	}
	if !listed {
		t.Fatalf("ListGroups lacks %s: %+v", group, lg.Groups)
	}
	dg, err := cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(dg.Groups) != 1 || dg.Groups[0].Error != nil || dg.Groups[0].GroupState != "Stable" || len(dg.Groups[0].Members) != 1 {
		t.Fatalf("DescribeGroups: %v %+v", err, dg)
	}
	if mt := dg.Groups[0].Members[0].MemberMetadata.Topics; len(mt) != 1 || mt[0] != topic {
		t.Fatalf("member metadata topics %v", mt)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	of, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range of.Topics[topic] {
		if p.Error != nil || p.CommittedOffset != counts[p.Partition] {
			t.Fatalf("OffsetFetch partition %d: %+v, want %d", p.Partition, p, counts[p.Partition])
		}
	}
	del, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	if err != nil || del.Errors[group] != nil {
		t.Fatalf("DeleteGroups: %v %+v", err, del)
	}
	dt, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || dt.Errors[topic] != nil {
		t.Fatalf("DeleteTopics: %v %+v", err, dt)
	}
}
