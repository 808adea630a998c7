package compat

import (
	"context"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kadm"
)

// fnvPartition is the partition kafka-go's Hash balancer and Sarama's hash partitioner pick
// for key: FNV-1a, read as int32, modulo the count, sign dropped. Written out here so the
// test checks placement against the rule, not against the client itself.
func fnvPartition(key []byte, partitions int) int {
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % int32(partitions)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// kafka-go Writer with the Hash balancer (acks=all, every codec): each key lands on the
// partition FNV-1a names, in order; a Reader with a GroupID reads and commits part of it,
// and a second Reader in the same group resumes exactly after the commit.
func TestKafkaGoWriterHashAndGroupReader(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "kgo-w")
	group := uniqueName(t, "kafkago-g")
	const partitions = 3
	createTopic(t, adm, topic, partitions, nil)

	ctx := testCtx(t, 120*time.Second)
	const perCodec = 60
	var sent []kafka.Message
	for c, codec := range []compress.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		w := &kafka.Writer{
			Addr:                   kafka.TCP(shared.Addr),
			Topic:                  topic,
			Balancer:               &kafka.Hash{},
			RequiredAcks:           kafka.RequireAll,
			Compression:            codec,
			BatchTimeout:           5 * time.Millisecond,
			AllowAutoTopicCreation: false,
			// Its own Transport: the shared default one caches metadata for 6 s, from
			// before kadm created this topic.
			Transport: &kafka.Transport{},
		}
		var msgs []kafka.Message
		for i := 0; i < perCodec; i++ {
			n := c*perCodec + i
			msgs = append(msgs, kafka.Message{
				Key:     []byte(fmt.Sprintf("user-%d", n%9)),
				Value:   []byte(fmt.Sprintf("kafka-go-%06d", n)),
				Headers: []kafka.Header{{Key: "n", Value: []byte(fmt.Sprint(n))}, {Key: "codec", Value: []byte(fmt.Sprint(c))}},
			})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			t.Fatalf("codec %d: write: %v", c, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msgs...)
	}
	total := len(sent)
	wantValue := map[string]kafka.Message{}
	for _, m := range sent {
		wantValue[string(m.Value)] = m
	}

	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{
			Brokers:                []string{shared.Addr},
			GroupID:                group,
			Topic:                  topic,
			MinBytes:               1,
			MaxBytes:               1 << 20,
			MaxWait:                200 * time.Millisecond,
			StartOffset:            kafka.FirstOffset,
			CommitInterval:         0, // CommitMessages commits synchronously
			HeartbeatInterval:      500 * time.Millisecond,
			SessionTimeout:         10 * time.Second,
			RebalanceTimeout:       5 * time.Second,
			JoinGroupBackoff:       200 * time.Millisecond,
			WatchPartitionChanges:  false,
			PartitionWatchInterval: time.Second,
		})
	}
	seen := map[string]bool{}
	lastSeqPerKey := map[string]string{}
	check := func(m kafka.Message) {
		w, ok := wantValue[string(m.Value)]
		if !ok {
			t.Fatalf("read a message never written: %q", m.Value)
		}
		if seen[string(m.Value)] {
			t.Fatalf("message %q read twice", m.Value)
		}
		seen[string(m.Value)] = true
		if string(m.Key) != string(w.Key) || len(m.Headers) != 2 || string(m.Headers[0].Value) != string(w.Headers[0].Value) {
			t.Fatalf("%q: key %q headers %v, want key %q headers %v", m.Value, m.Key, m.Headers, w.Key, w.Headers)
		}
		if want := fnvPartition(m.Key, partitions); m.Partition != want {
			t.Fatalf("key %s on partition %d, Hash balancer rule says %d", m.Key, m.Partition, want)
		}
		if last := lastSeqPerKey[string(m.Key)]; last >= string(m.Value) {
			t.Fatalf("key %s: %q after %q (per-key order)", m.Key, m.Value, last)
		}
		lastSeqPerKey[string(m.Key)] = string(m.Value)
	}

	first := newReader()
	const firstShare = 130
	for i := 0; i < firstShare; i++ {
		m, err := first.FetchMessage(ctx)
		if err != nil {
			first.Close()
			t.Fatalf("first reader, message %d: %v", i, err)
		}
		check(m)
		if err := first.CommitMessages(ctx, m); err != nil {
			first.Close()
			t.Fatalf("commit: %v", err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close first reader: %v", err)
	}

	// The committed offsets are visible to the admin client before the second reader joins.
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var committedTotal int64
	committed.Each(func(o kadm.OffsetResponse) { committedTotal += o.At })
	if committedTotal != firstShare {
		t.Fatalf("group committed %d offsets in all, want %d", committedTotal, firstShare)
	}

	second := newReader()
	defer second.Close()
	for len(seen) < total {
		m, err := second.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("second reader after %d of %d: %v", len(seen), total, err)
		}
		check(m)
		if err := second.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	// Nothing more: a short fetch times out.
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := second.FetchMessage(quiet); err == nil {
		t.Fatalf("extra message after all were read: %q", m.Value)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		e, _ := ends.Lookup(topic, p)
		c, ok := committed.Lookup(topic, p)
		if !ok || c.At != e.Offset {
			t.Fatalf("partition %d: committed %+v, end %d", p, c, e.Offset)
		}
	}
}
