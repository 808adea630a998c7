package compat

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	// The newest Kafka version this Sarama knows, so it picks modern request versions.
	cfg.Version = sarama.MaxVersion
	cfg.ClientID = "strom-go-sarama"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // Sarama's condition for idempotence
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

func saramaMessage(topic string, i int) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic: topic,
		Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%5)),
		Value: sarama.ByteEncoder(bytes.Repeat([]byte(fmt.Sprintf("sarama-%06d;", i)), 1+i%4)),
		Headers: []sarama.RecordHeader{
			{Key: []byte("n"), Value: []byte(fmt.Sprint(i))},
			{Key: []byte("n"), Value: []byte("dup-key")},
		},
	}
}

// readPartitions reads every partition of topic from the oldest offset until want
// messages arrived, with Sarama's partition consumer.
func readPartitions(t *testing.T, topic string, want int) []*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *sarama.ConsumerMessage, want+16)
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}()
	var got []*sarama.ConsumerMessage
	timeout := time.After(30 * time.Second)
	for len(got) < want {
		select {
		case m := <-out:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("read %d of %d messages", len(got), want)
		}
	}
	select {
	case m := <-out:
		t.Fatalf("unexpected extra message %d@%d %q", m.Partition, m.Offset, m.Value)
	case <-time.After(300 * time.Millisecond):
	}
	return got
}

type placed struct {
	partition int32
	offset    int64
}

// checkSaramaRead compares what was read with what the producer was told.
func checkSaramaRead(t *testing.T, sent map[string]placed, keys map[string]string, got []*sarama.ConsumerMessage) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("read %d, sent %d", len(got), len(sent))
	}
	perPartition := map[int32][]int64{}
	for _, m := range got {
		p, ok := sent[string(m.Value)]
		if !ok {
			t.Fatalf("read a message never sent: %q", m.Value)
		}
		if p.partition != m.Partition || p.offset != m.Offset {
			t.Fatalf("%q read at %d@%d, producer was told %d@%d", m.Value, m.Partition, m.Offset, p.partition, p.offset)
		}
		if string(m.Key) != keys[string(m.Value)] {
			t.Fatalf("%q: key %q, want %q", m.Value, m.Key, keys[string(m.Value)])
		}
		if len(m.Headers) != 2 || string(m.Headers[0].Key) != "n" || string(m.Headers[1].Value) != "dup-key" {
			t.Fatalf("%q: headers %v", m.Value, m.Headers)
		}
		perPartition[m.Partition] = append(perPartition[m.Partition], m.Offset)
	}
	for p, offs := range perPartition {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: offsets %v not contiguous from 0", p, offs[:i+1])
			}
		}
	}
}

// SyncProducer with every codec (acks=all, idempotent): the placements it returns are
// where a partition consumer finds each message, offsets contiguous, keys and headers intact.
func TestSaramaSyncProducer(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "sarama-sync")
	createTopic(t, adm, topic, 3, nil)
	sent := map[string]placed{}
	keys := map[string]string{}
	record := func(m *sarama.ProducerMessage) {
		v, _ := m.Value.Encode()
		k, _ := m.Key.Encode()
		sent[string(v)] = placed{m.Partition, m.Offset}
		keys[string(v)] = string(k)
	}
	for c, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		cfg := saramaConfig()
		cfg.Producer.Compression = codec
		prod, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
		if err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 40; i++ {
			msgs = append(msgs, saramaMessage(topic, c*100+i))
		}
		if err := prod.SendMessages(msgs); err != nil {
			prod.Close()
			t.Fatalf("%v: send: %v", codec, err)
		}
		for _, m := range msgs {
			record(m)
		}
		// SendMessage returns the placement directly.
		one := saramaMessage(topic, c*100+99)
		p, o, err := prod.SendMessage(one)
		prod.Close()
		if err != nil || p != one.Partition || o != one.Offset {
			t.Fatalf("%v: send one: %d@%d %v", codec, p, o, err)
		}
		record(one)
	}
	got := readPartitions(t, topic, len(sent))
	checkSaramaRead(t, sent, keys, got)
	keyPart := map[string]int32{}
	for _, m := range got {
		if p, ok := keyPart[string(m.Key)]; ok && p != m.Partition {
			t.Fatalf("key %s on partitions %d and %d", m.Key, p, m.Partition)
		}
		keyPart[string(m.Key)] = m.Partition
	}
}

func TestSaramaAsyncProducerIdempotent(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "sarama-async")
	createTopic(t, adm, topic, 3, nil)
	cfg := saramaConfig()
	cfg.Producer.Compression = sarama.CompressionZSTD
	cfg.Producer.Flush.Messages = 50
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewAsyncProducer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	sent := map[string]placed{}
	keys := map[string]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m := range prod.Successes() {
			v, _ := m.Value.Encode()
			k, _ := m.Key.Encode()
			mu.Lock()
			sent[string(v)] = placed{m.Partition, m.Offset}
			keys[string(v)] = string(k)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for e := range prod.Errors() {
			mu.Lock()
			errs = append(errs, e.Err)
			mu.Unlock()
		}
	}()
	for i := 0; i < n; i++ {
		prod.Input() <- saramaMessage(topic, i)
	}
	prod.AsyncClose()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first %v", len(errs), errs[0])
	}
	if len(sent) != n {
		t.Fatalf("%d successes for %d messages", len(sent), n)
	}
	checkSaramaRead(t, sent, keys, readPartitions(t, topic, n))
	// Sarama's idempotent producer really was on: every batch carries its producer id.
	cons := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pids := map[int64]bool{}
	for _, r := range consumeN(t, cons, n, 30*time.Second) {
		pids[r.ProducerID] = true
	}
	if len(pids) != 1 || pids[-1] {
		t.Fatalf("producer ids %v, want one real id", pids)
	}
}

// groupHandler records the partitions each session was given and the messages it read,
// marking each one so the session commits it.
type groupHandler struct {
	mu     sync.Mutex
	claims map[int32]bool
	got    []*sarama.ConsumerMessage
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = map[int32]bool{}
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claims[p] = true
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.claims = map[int32]bool{}
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, m)
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func (h *groupHandler) snapshot() (map[int32]bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int32]bool{}
	for p := range h.claims {
		out[p] = true
	}
	return out, len(h.got)
}

func TestSaramaConsumerGroup(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "sarama-grp")
	group := uniqueName(t, "sarama-g")
	const partitions = 4
	createTopic(t, adm, topic, partitions, nil)

	cfg := saramaConfig()
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handlers := []*groupHandler{{}, {}}
	var groups []sarama.ConsumerGroup
	var wg sync.WaitGroup
	errCh := make(chan error, 4)
	for _, h := range handlers {
		cg, err := sarama.NewConsumerGroup([]string{shared.Addr}, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, cg)
		wg.Add(1)
		go func(h *groupHandler) {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
					select {
					case errCh <- err:
					default:
					}
					return
				}
			}
		}(h)
		go func() {
			for err := range cg.Errors() {
				select {
				case errCh <- err:
				default:
				}
			}
		}()
	}
	closeAll := func() {
		cancel()
		wg.Wait()
		for _, cg := range groups {
			cg.Close()
		}
	}
	closed := false
	defer func() {
		if !closed {
			closeAll()
		}
	}()
	checkErr := func() {
		select {
		case err := <-errCh:
			t.Fatalf("consumer group: %v", err)
		default:
		}
	}
	var owned []map[int32]bool
	waitFor(t, "two Sarama members to split the partitions", 60*time.Second, func() bool {
		checkErr()
		a, _ := handlers[0].snapshot()
		b, _ := handlers[1].snapshot()
		owned = []map[int32]bool{a, b}
		return assignmentSplit(owned, partitions)
	})
	t.Logf("assignment: %v %v", owned[0], owned[1])

	prodCfg := saramaConfig()
	prod, err := sarama.NewSyncProducer([]string{shared.Addr}, prodCfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	var msgs []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		msgs = append(msgs, saramaMessage(topic, i))
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	sent := map[string]placed{}
	keys := map[string]string{}
	for _, m := range msgs {
		v, _ := m.Value.Encode()
		k, _ := m.Key.Encode()
		sent[string(v)] = placed{m.Partition, m.Offset}
		keys[string(v)] = string(k)
	}
	waitFor(t, "the group to read every message", 60*time.Second, func() bool {
		checkErr()
		_, a := handlers[0].snapshot()
		_, b := handlers[1].snapshot()
		return a+b >= n
	})
	time.Sleep(300 * time.Millisecond) // room for a duplicate and the last auto-commit
	closeAll()
	closed = true

	var all []*sarama.ConsumerMessage
	for i, h := range handlers {
		if len(h.got) == 0 {
			t.Fatalf("member %d read nothing", i)
		}
		for _, m := range h.got {
			if !owned[i][m.Partition] {
				t.Fatalf("member %d read partition %d outside its claims %v", i, m.Partition, owned[i])
			}
		}
		all = append(all, h.got...)
	}
	checkSaramaRead(t, sent, keys, all)

	// The committed offsets, read back through Sarama's admin, are the end offsets.
	ca, err := sarama.NewClusterAdmin([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	resp, err := ca.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, p := range sent {
		if p.offset+1 > ends[p.partition] {
			ends[p.partition] = p.offset + 1
		}
	}
	for p := int32(0); p < partitions; p++ {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != ends[p] {
			t.Fatalf("partition %d: committed %+v, want %d", p, b, ends[p])
		}
	}
	groupsListed, err := ca.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if groupsListed[group] != "consumer" {
		t.Fatalf("ListConsumerGroups: %s has protocol type %q", group, groupsListed[group])
	}
}

// Sarama speaking older Kafka versions (its own encoders for each): produce, a one-member
// consumer group that reads everything and commits, committed offsets read back.
func TestSaramaOlderVersions(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.V1_0_0_0, sarama.V2_0_0_0, sarama.V2_1_0_0,
		sarama.V2_4_0_0, sarama.V2_8_0_0, sarama.V3_0_0_0, sarama.V3_6_0_0} {
		t.Run(v.String(), func(t *testing.T) {
			adm := newAdmin(t, shared.Addr)
			topic := uniqueName(t, "sv")
			createTopic(t, adm, topic, 2, nil)
			cfg := saramaConfig()
			cfg.Version = v
			if v.IsAtLeast(sarama.V2_1_0_0) {
				cfg.Producer.Compression = sarama.CompressionZSTD
			} else {
				cfg.Producer.Compression = sarama.CompressionLZ4
			}
			prod, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*sarama.ProducerMessage
			for i := 0; i < 30; i++ {
				msgs = append(msgs, saramaMessage(topic, i))
			}
			err = prod.SendMessages(msgs)
			prod.Close()
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			sent := map[string]placed{}
			keys := map[string]string{}
			ends := map[int32]int64{}
			for _, m := range msgs {
				val, _ := m.Value.Encode()
				k, _ := m.Key.Encode()
				sent[string(val)] = placed{m.Partition, m.Offset}
				keys[string(val)] = string(k)
				if m.Offset+1 > ends[m.Partition] {
					ends[m.Partition] = m.Offset + 1
				}
			}
			group := uniqueName(t, "svg")
			cg, err := sarama.NewConsumerGroup([]string{shared.Addr}, group, cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := &groupHandler{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				for ctx.Err() == nil {
					if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			waitFor(t, "the group to read every message", 30*time.Second, func() bool {
				_, n := h.snapshot()
				return n >= len(msgs)
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("consume: %v", err)
			}
			if err := cg.Close(); err != nil { // commits what was marked
				t.Fatalf("close: %v", err)
			}
			checkSaramaRead(t, sent, keys, h.got)
			ca, err := sarama.NewClusterAdmin([]string{shared.Addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			resp, err := ca.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
			if err != nil {
				t.Fatal(err)
			}
			for p, end := range ends {
				if b := resp.GetBlock(topic, p); b == nil || b.Err != sarama.ErrNoError || b.Offset != end {
					t.Fatalf("partition %d: committed %+v, want %d", p, b, end)
				}
			}
		})
	}
}
