package compat

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func strp(s string) *string { return &s }

func configValue(t *testing.T, rc kadm.ResourceConfig, key string) (string, kmsg.ConfigSource) {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == key {
			if c.Value == nil {
				return "", c.Source
			}
			return *c.Value, c.Source
		}
	}
	t.Fatalf("config %s not described for %s", key, rc.Name)
	return "", 0
}

// Topics: create (with a config), list, describe and alter configs (incremental and
// legacy), add partitions, delete.
func TestKadmTopicsAndConfigs(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 60*time.Second)
	topic := uniqueName(t, "adm")
	createTopic(t, adm, topic, 3, map[string]*string{"retention.ms": strp("3600000")})

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := topics[topic]; !ok || len(d.Partitions) != 3 || d.Err != nil {
		t.Fatalf("listed %s: %+v", topic, d)
	}
	if _, ok := topics["__consumer_offsets"]; ok {
		t.Fatal("ListTopics (no internal) lists __consumer_offsets")
	}

	describe := func() kadm.ResourceConfig {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe configs %s: %v %v", topic, err, rc.Err)
		}
		return rc
	}
	if v, src := configValue(t, describe(), "retention.ms"); v != "3600000" || src != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %q (source %v), want 3600000 from the topic", v, src)
	}

	// IncrementalAlterConfigs: set one key, delete another back to its default.
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2097152")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, topic)
	if err != nil || resps[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, resps)
	}
	rc := describe()
	if v, _ := configValue(t, rc, "max.message.bytes"); v != "2097152" {
		t.Fatalf("max.message.bytes = %q after set", v)
	}
	if v, src := configValue(t, rc, "retention.ms"); v == "3600000" || src == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %q (source %v) after delete, want the default", v, src)
	}
	// An unknown key is refused, naming the topic's error, and changes nothing.
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")}}, topic)
	if err == nil && (len(resps) == 0 || resps[0].Err == nil) {
		t.Fatalf("alter with an unknown key succeeded: %+v", resps)
	}

	// Legacy AlterConfigs replaces the whole set: max.message.bytes goes back to default.
	resps, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: strp("compact")}}, topic)
	if err != nil || resps[0].Err != nil {
		t.Fatalf("legacy alter: %v %+v", err, resps)
	}
	rc = describe()
	if v, _ := configValue(t, rc, "cleanup.policy"); v != "compact" {
		t.Fatalf("cleanup.policy = %q", v)
	}
	if v, src := configValue(t, rc, "max.message.bytes"); v == "2097152" || src == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("max.message.bytes = %q (%v) survived a legacy AlterConfigs that left it out", v, src)
	}

	// Broker configs are described too: by node id (an empty name is the cluster-wide
	// dynamic defaults only, as in Kafka, where num.partitions set at start is not listed).
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		t.Fatalf("list brokers: %v %+v", err, brokers)
	}
	brcs, err := adm.DescribeBrokerConfigs(ctx, brokers[0].NodeID)
	if err != nil || len(brcs) == 0 || brcs[0].Err != nil {
		t.Fatalf("describe broker configs: %v %+v", err, brcs)
	}
	if v, _ := configValue(t, brcs[0], "num.partitions"); v != "3" {
		t.Fatalf("broker num.partitions = %q, want 3 (set at start)", v)
	}

	// CreatePartitions: 3 -> 5, and records reach the new partitions (keyed: the topic is
	// compacted now, and a compacted topic refuses records without a key).
	cps, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || cps[topic].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cps[topic])
	}
	waitFor(t, "5 partitions in metadata", 10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx, topic)
		return err == nil && len(td[topic].Partitions) == 5
	})
	prod := newClient(t, shared.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 4, Key: []byte("k"), Value: []byte("in a new partition")}).FirstErr(); err != nil {
		t.Fatalf("produce to partition 4: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if lo, ok := ends.Lookup(topic, 4); !ok || lo.Offset != 1 {
		t.Fatalf("partition 4 end offset %+v, want 1", lo)
	}

	// Delete: gone from the list, and a second delete says unknown topic.
	dels, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dels[topic].Err != nil {
		t.Fatalf("delete: %v %+v", err, dels[topic])
	}
	waitFor(t, "the deleted topic to leave the list", 10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx)
		_, still := td[topic]
		return err == nil && !still
	})
	// (kgo retries UNKNOWN_TOPIC_OR_PARTITION for a few seconds before giving up.)
	dels, err = adm.DeleteTopics(ctx, topic)
	if err == nil && !errors.Is(dels[topic].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting a deleted topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", dels[topic].Err)
	}
}

// Offsets: list start/end/by time, delete records, and group offsets committed, fetched,
// listed, described and deleted through the admin client.
func TestKadmOffsetsRecordsAndGroups(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	ctx := testCtx(t, 60*time.Second)
	topic := uniqueName(t, "offs")
	createTopic(t, adm, topic, 1, nil)

	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	prod := newClient(t, shared.Addr, kgo.ProducerLinger(0))
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("v%d", i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(lo kadm.ListedOffsets, err error) kadm.ListedOffset {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		o, ok := lo.Lookup(topic, 0)
		if !ok || o.Err != nil {
			t.Fatalf("list offsets: %+v", o)
		}
		return o
	}
	if o := lookup(adm.ListStartOffsets(ctx, topic)); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	if o := lookup(adm.ListEndOffsets(ctx, topic)); o.Offset != 10 {
		t.Fatalf("end offset %d", o.Offset)
	}
	// The first record at or after base+4.5s is record 5.
	if o := lookup(adm.ListOffsetsAfterMilli(ctx, base.Add(4500*time.Millisecond).UnixMilli(), topic)); o.Offset != 5 || o.Timestamp != base.Add(5*time.Second).UnixMilli() {
		t.Fatalf("offset after base+4.5s: %+v, want offset 5 at base+5s", o)
	}
	if o := lookup(adm.ListMaxTimestampOffsets(ctx, topic)); o.Offset != 9 {
		t.Fatalf("max-timestamp offset %d, want 9", o.Offset)
	}
	// After the last timestamp: the end offset (Kafka answers -1 with v0; v1+ the log end).
	if o := lookup(adm.ListOffsetsAfterMilli(ctx, base.Add(time.Minute).UnixMilli(), topic)); o.Offset != 10 && o.Offset != -1 {
		t.Fatalf("offset after every timestamp: %d", o.Offset)
	}

	// DeleteRecords before offset 4: the start offset moves and a reader from the start
	// gets v4 first.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1})
	drs, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if dr := drs[topic][0]; dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", dr)
	}
	if o := lookup(adm.ListStartOffsets(ctx, topic)); o.Offset != 4 {
		t.Fatalf("start offset %d after delete, want 4", o.Offset)
	}
	reader := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consumeN(t, reader, 6, 20*time.Second)
	if recs[0].Offset != 4 || string(recs[0].Value) != "v4" || string(recs[5].Value) != "v9" {
		t.Fatalf("after delete, read from %d %q to %q", recs[0].Offset, recs[0].Value, recs[5].Value)
	}
	// Deleting past the end is refused.
	var past kadm.Offsets
	past.Add(kadm.Offset{Topic: topic, Partition: 0, At: 11, LeaderEpoch: -1})
	if drs, err := adm.DeleteRecords(ctx, past); err == nil && drs[topic][0].Err == nil {
		t.Fatal("delete records past the end succeeded")
	}

	// Group offsets through the admin client (an empty group accepts them).
	group := uniqueName(t, "admg")
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1, Metadata: "by kadm"})
	if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.Err != nil || o.At != 7 || o.Metadata != "by kadm" {
		t.Fatalf("fetched offset %+v", o)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := lags[group].Lag.Lookup(topic, 0); !ok || l.Lag != 3 {
		t.Fatalf("lag %+v, want 3 (end 10, committed 7)", l)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[group]; !ok {
		t.Fatalf("ListGroups lacks %s: %v", group, listed.Groups())
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d := described[group]; d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("described %+v, want an Empty group", d)
	}
	dg, err := adm.DeleteGroup(ctx, group)
	if err != nil || dg.Err != nil {
		t.Fatalf("delete group: %v %+v", err, dg)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[group]; ok {
		t.Fatalf("deleted group %s still listed", group)
	}
	fetched, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("deleted group still has offset %+v", o)
	}
}

// A group with a live member cannot be deleted (NON_EMPTY_GROUP).
func TestKadmDeleteLiveGroupRefused(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "live")
	group := uniqueName(t, "liveg")
	createTopic(t, adm, topic, 1, nil)
	m := newGroupMember(t, topic, group)
	waitFor(t, "the member to be assigned", 30*time.Second, func() bool {
		ctx := testCtx(t, 200*time.Millisecond)
		m.cl.PollFetches(ctx)
		return len(m.snapshot()) == 1
	})
	dg, err := adm.DeleteGroup(testCtx(t, 10*time.Second), group)
	if err == nil && dg.Err == nil {
		t.Fatal("deleting a group with a live member succeeded")
	}
	if dg.Err != nil && !errors.Is(dg.Err, kerr.NonEmptyGroup) {
		t.Fatalf("delete live group: %v, want NON_EMPTY_GROUP", dg.Err)
	}
}

// Cluster description: Metadata and DescribeCluster agree on the cluster id and the one
// broker's address; ApiVersions advertises what these clients use.
func TestKadmClusterAndApiVersions(t *testing.T) {
	cl := newClient(t, shared.Addr)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t, 30*time.Second)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.Cluster == "" || len(md.Brokers) != 1 || md.Controller < 0 {
		t.Fatalf("metadata: cluster %q brokers %v controller %d", md.Cluster, md.Brokers, md.Controller)
	}
	b := md.Brokers[0]
	if fmt.Sprintf("%s:%d", b.Host, b.Port) != shared.Addr {
		t.Fatalf("broker advertised at %s:%d, want %s", b.Host, b.Port, shared.Addr)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dresp, err := dc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dresp.ErrorCode != 0 || dresp.ClusterID != md.Cluster || len(dresp.Brokers) != 1 ||
		dresp.Brokers[0].NodeID != b.NodeID || dresp.Brokers[0].Host+":"+strconv.Itoa(int(dresp.Brokers[0].Port)) != shared.Addr {
		t.Fatalf("DescribeCluster: %+v, metadata cluster %q", dresp, md.Cluster)
	}
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Fatalf("api versions from %d brokers", len(versions))
	}
	for _, v := range versions {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		for _, want := range []struct {
			key int16
			min int16
		}{
			{kmsg.Produce.Int16(), 9}, {kmsg.Fetch.Int16(), 12}, {kmsg.ListOffsets.Int16(), 7},
			{kmsg.Metadata.Int16(), 12}, {kmsg.OffsetCommit.Int16(), 8}, {kmsg.OffsetFetch.Int16(), 8},
			{kmsg.InitProducerID.Int16(), 4}, {kmsg.EndTxn.Int16(), 3}, {kmsg.TxnOffsetCommit.Int16(), 3},
			{kmsg.IncrementalAlterConfigs.Int16(), 1}, {kmsg.DeleteRecords.Int16(), 2},
			{kmsg.DescribeCluster.Int16(), 0}, {kmsg.ConsumerGroupHeartbeat.Int16(), 1},
			{kmsg.ConsumerGroupDescribe.Int16(), 0},
		} {
			_, max, ok := v.KeyVersions(want.key)
			if !ok || max < want.min {
				t.Errorf("%s: advertised max %d (present %v), want at least %d", kmsg.NameForKey(want.key), max, ok, want.min)
			}
		}
		var keys []string
		v.EachKeySorted(func(key, min, max int16) { keys = append(keys, fmt.Sprintf("%d:%d-%d", key, min, max)) })
		t.Logf("broker looks like Kafka %s to franz-go; advertises %v", v.VersionGuess(), keys)
	}
}
