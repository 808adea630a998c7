package compat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KIP-848 with a regex subscription: the broker resolves the pattern, a topic created after
// the member joined is assigned to it too, and a non-matching topic is not.
func TestKgoNextGenRegexSubscription(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	prefix := uniqueName(t, "rx")
	first, second, other := prefix+"-a", prefix+"-b", uniqueName(t, "other")
	createTopic(t, adm, first, 2, nil)
	createTopic(t, adm, other, 1, nil)
	group := uniqueName(t, "rx-g")
	cons := newClient(t, shared.Addr, kgo.ConsumerGroup(group), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeRegex(),
		kgo.ConsumeTopics("^"+regexp.QuoteMeta(prefix)+"-.*"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(200*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	prod := newClient(t, shared.Addr)
	ctx := testCtx(t, 60*time.Second)
	produce := func(topic string, n int) {
		for i := 0; i < n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s-%d", topic, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(first, 10)
	produce(other, 5)
	got := consumeN(t, cons, 10, 30*time.Second)
	createTopic(t, adm, second, 1, nil)
	produce(second, 7)
	got = append(got, consumeN(t, cons, 7, 30*time.Second)...)
	expectQuiet(t, cons, 500*time.Millisecond)
	counts := map[string]int{}
	for _, r := range got {
		counts[r.Topic]++
	}
	if counts[first] != 10 || counts[second] != 7 || counts[other] != 0 {
		t.Fatalf("read per topic %v, want %s:10 %s:7 and nothing from %s", counts, first, second, other)
	}
	described, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil || described[group].Err != nil {
		t.Fatalf("ConsumerGroupDescribe: %v %+v", err, described[group])
	}
}

// Records near the 1 MiB default max.message.bytes, fetched with a partition byte limit
// smaller than one record: the first batch still comes back whole (KIP-74), every byte equal.
func TestKgoLargeRecordsSmallFetchLimit(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "large")
	createTopic(t, adm, topic, 1, nil)
	prod := newClient(t, shared.Addr, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	ctx := testCtx(t, 60*time.Second)
	var sums [][32]byte
	for i := 0; i < 5; i++ {
		v := make([]byte, 900*1024+i)
		for j := range v {
			v[j] = byte((j*31 + i*7) ^ (j >> 9))
		}
		sums = append(sums, sha256.Sum256(v))
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	cons := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(1024), kgo.FetchMaxBytes(2048))
	got := consumeN(t, cons, 5, 30*time.Second)
	for i, r := range got {
		if r.Offset != int64(i) || sha256.Sum256(r.Value) != sums[i] {
			t.Fatalf("record %d at offset %d: %d bytes, content differs", i, r.Offset, len(r.Value))
		}
	}
}

// kafka-go's Conn, its lowest layer: DialLeader, WriteMessages, ReadBatch at an offset,
// ReadOffsets; and a Reader pinned to a partition (no group) starting mid-log.
func TestKafkaGoConnAndPartitionReader(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "conn")
	createTopic(t, adm, topic, 1, nil)
	ctx := testCtx(t, 60*time.Second)
	conn, err := kafka.DialLeader(ctx, "tcp", shared.Addr, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msgs []kafka.Message
	for i := 0; i < 50; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i % 3)), Value: []byte(fmt.Sprintf("conn-%03d", i)),
			Headers: []kafka.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.WriteMessages(msgs[:25]...); err != nil {
		t.Fatalf("conn write: %v", err)
	}
	if _, err := conn.WriteCompressedMessages(kafka.Zstd.Codec(), msgs[25:]...); err != nil {
		t.Fatalf("conn write zstd: %v", err)
	}
	first, last, err := conn.ReadOffsets()
	if err != nil || first != 0 || last != 50 {
		t.Fatalf("ReadOffsets: %d %d %v", first, last, err)
	}
	if _, err := conn.Seek(20, kafka.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	batch := conn.ReadBatch(1, 1<<20)
	var read []kafka.Message
	for {
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		read = append(read, m)
	}
	if err := batch.Close(); err != nil {
		t.Fatalf("batch: %v", err)
	}
	if len(read) == 0 || read[0].Offset != 20 || string(read[0].Value) != "conn-020" {
		t.Fatalf("ReadBatch from 20: %d messages, first %+v", len(read), read)
	}
	for i, m := range read {
		if m.Offset != int64(20+i) || !bytes.Equal(m.Value, msgs[20+i].Value) || string(m.Headers[0].Value) != fmt.Sprint(20+i) {
			t.Fatalf("ReadBatch message %d: offset %d value %q", i, m.Offset, m.Value)
		}
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{shared.Addr}, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(33); err != nil {
		t.Fatal(err)
	}
	for i := 33; i < 50; i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("partition reader at %d: %v", i, err)
		}
		if m.Offset != int64(i) || string(m.Value) != fmt.Sprintf("conn-%03d", i) {
			t.Fatalf("partition reader: offset %d value %q, want %d", m.Offset, m.Value, i)
		}
	}
	lag, err := r.ReadLag(ctx)
	if err != nil || lag != 0 {
		t.Fatalf("ReadLag: %d %v", lag, err)
	}
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := r.ReadMessage(quiet); err == nil {
		t.Fatalf("extra message %q", m.Value)
	}
}
