package compat

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// testRecord is record i of a run: 7 keys, a value that names the key's sequence number,
// and headers including a repeated key and an empty value.
func testRecord(topic string, i int) *kgo.Record { return testRecordKeys(topic, i, 7) }

// testRecordKeys is testRecord over the given number of distinct keys.
func testRecordKeys(topic string, i, keys int) *kgo.Record {
	key := fmt.Sprintf("key-%d", i%keys)
	value := bytes.Repeat([]byte(fmt.Sprintf("%s/seq=%06d;", key, i)), 1+i%5)
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(key),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: "h", Value: []byte(fmt.Sprint(i))},
			{Key: "h", Value: []byte("again")},
			{Key: "empty", Value: []byte{}},
		},
	}
}

// checkRoundTrip asserts that got holds exactly the records of want (by value), with
// keys and headers intact, per-key order kept, and offsets contiguous from 0.
func checkRoundTrip(t *testing.T, want []*kgo.Record, got []*kgo.Record) {
	t.Helper()
	checkSameRecords(t, want, got, false)
	firstPerPartition := map[int32]int64{}
	for _, r := range got {
		if _, ok := firstPerPartition[r.Partition]; !ok {
			firstPerPartition[r.Partition] = r.Offset
		}
	}
	for p, o := range firstPerPartition {
		if o != 0 {
			t.Fatalf("partition %d starts at offset %d, want 0", p, o)
		}
	}
}

// checkSameRecords asserts that got holds exactly the records of want (by value), nothing
// twice, keys and headers intact, per-key order kept, and offsets increasing per partition
// (contiguous unless allowGaps: transaction markers take offsets).
func checkSameRecords(t *testing.T, want []*kgo.Record, got []*kgo.Record, allowGaps bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	byValue := map[string]*kgo.Record{}
	for _, r := range want {
		byValue[string(r.Value)] = r
	}
	seen := map[string]bool{}
	lastIndexPerKey := map[string]int{}
	for _, r := range got {
		w, ok := byValue[string(r.Value)]
		if !ok {
			t.Fatalf("record %s/%d@%d has a value never produced: %q", r.Topic, r.Partition, r.Offset, r.Value)
		}
		if seen[string(r.Value)] {
			t.Fatalf("record %q consumed twice", r.Value)
		}
		seen[string(r.Value)] = true
		if !bytes.Equal(r.Key, w.Key) || !equalHeaders(r.Headers, w.Headers) {
			t.Fatalf("record @%d: key %q headers %v, want key %q headers %v", r.Offset, r.Key, r.Headers, w.Key, w.Headers)
		}
		var seq int
		fmt.Sscanf(string(r.Value[len(r.Key)+5:]), "%06d", &seq)
		if last, ok := lastIndexPerKey[string(r.Key)]; ok && seq <= last {
			t.Fatalf("key %s: seq %d after %d (per-key order broken)", r.Key, seq, last)
		}
		lastIndexPerKey[string(r.Key)] = seq
	}
	checkContiguous(t, got, allowGaps)
}

// Sync produce with every codec, then read each partition directly from the start.
func TestKgoProduceSyncEveryCodecConsumePartitions(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := uniqueName(t, "codec")
			createTopic(t, adm, topic, 3, nil)
			const n = 300
			prod := newClient(t, shared.Addr, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(5*time.Millisecond))
			var want []*kgo.Record
			for i := 0; i < n; i++ {
				want = append(want, testRecord(topic, i))
			}
			ctx := testCtx(t, 30*time.Second)
			if err := prod.ProduceSync(ctx, want...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			cons := newClient(t, shared.Addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()},
			}))
			got := consumeN(t, cons, n, 30*time.Second)
			checkRoundTrip(t, want, got)
			// The producer's own offsets match what the consumer saw.
			offsets := map[string]int64{}
			for _, r := range want {
				offsets[string(r.Value)] = int64(r.Partition)<<40 | r.Offset
			}
			for _, r := range got {
				if offsets[string(r.Value)] != int64(r.Partition)<<40|r.Offset {
					t.Fatalf("record %q: consumed at %d@%d, producer was told otherwise", r.Value, r.Partition, r.Offset)
				}
			}
			// Every key landed on one partition only.
			keyPart := map[string]int32{}
			for _, r := range got {
				if p, ok := keyPart[string(r.Key)]; ok && p != r.Partition {
					t.Fatalf("key %s on partitions %d and %d", r.Key, p, r.Partition)
				}
				keyPart[string(r.Key)] = r.Partition
			}
			expectQuiet(t, cons, 300*time.Millisecond)
		})
	}
}

// Async produce through promises with the idempotent producer (kgo's default), then
// consume with a topic subscription: every batch carries a producer id, nothing duplicated.
func TestKgoProduceAsyncIdempotent(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "async")
	createTopic(t, adm, topic, 2, nil)
	const n = 3000
	prod := newClient(t, shared.Addr, kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.MaxBufferedRecords(500), kgo.ProducerBatchMaxBytes(16<<10))
	var want []*kgo.Record
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	ctx := testCtx(t, 60*time.Second)
	for i := 0; i < n; i++ {
		r := testRecord(topic, i)
		want = append(want, r)
		wg.Add(1)
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	cons := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, n, 60*time.Second)
	checkRoundTrip(t, want, got)
	pids := map[int64]bool{}
	for _, r := range got {
		if r.ProducerID < 0 {
			t.Fatalf("record @%d has no producer id: the idempotent producer was not used", r.Offset)
		}
		pids[r.ProducerID] = true
	}
	if len(pids) != 1 {
		t.Fatalf("want one producer id across the run, got %v", pids)
	}
	expectQuiet(t, cons, 300*time.Millisecond)
}

// Two idempotent producers interleaving batches on one partition each get their own
// producer id, and each one's records keep their order with none lost or doubled.
func TestKgoTwoIdempotentProducersInterleave(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "interleave")
	createTopic(t, adm, topic, 1, nil)
	const perProducer = 500
	var wg sync.WaitGroup
	errCh := make(chan error, 2)
	for p := 0; p < 2; p++ {
		cl := newClient(t, shared.Addr, kgo.ProducerLinger(time.Millisecond))
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < perProducer; i += 50 {
				var batch []*kgo.Record
				for j := i; j < i+50; j++ {
					batch = append(batch, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("p%d-%04d", p, j))})
				}
				if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
					errCh <- err
					return
				}
			}
		}(p)
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatalf("produce: %v", err)
	}
	cons := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, 2*perProducer, 30*time.Second)
	checkContiguous(t, got, false)
	next := map[byte]int{}
	pidOf := map[byte]int64{}
	for _, r := range got {
		who := r.Value[1]
		var seq int
		fmt.Sscanf(string(r.Value[3:]), "%04d", &seq)
		if seq != next[who] {
			t.Fatalf("producer %c: got seq %d, want %d", who, seq, next[who])
		}
		next[who]++
		if pid, ok := pidOf[who]; ok && pid != r.ProducerID {
			t.Fatalf("producer %c changed producer id %d -> %d", who, pid, r.ProducerID)
		}
		pidOf[who] = r.ProducerID
	}
	if pidOf['0'] == pidOf['1'] {
		t.Fatalf("two producers share producer id %d", pidOf['0'])
	}
}
