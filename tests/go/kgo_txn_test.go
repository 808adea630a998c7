package compat

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func transform(v []byte) []byte { return append([]byte("T:"), bytes.ToUpper(v)...) }

// Consume-transform-produce with GroupTransactSession. The first transaction that carries
// records is aborted on purpose: the session rewinds to the committed offsets and the same
// input is transformed again. A read_committed reader of the output must then see every
// transformed input record exactly once, per key in input order, and the group's committed
// offsets must be the input's end offsets.
func TestKgoGroupTransactSession(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	in := uniqueName(t, "eos-in")
	out := uniqueName(t, "eos-out")
	group := uniqueName(t, "eos-g")
	createTopic(t, adm, in, 2, nil)
	createTopic(t, adm, out, 2, nil)

	const n = 240
	prod := newClient(t, shared.Addr)
	var input []*kgo.Record
	for i := 0; i < n; i++ {
		input = append(input, testRecord(in, i))
	}
	if err := prod.ProduceSync(testCtx(t, 30*time.Second), input...).FirstErr(); err != nil {
		t.Fatalf("produce input: %v", err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(shared.Addr),
		kgo.TransactionalID(uniqueName(t, "txid")),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	ctx := testCtx(t, 90*time.Second)
	committedRecords, aborted, transactions := 0, 0, 0
	for committedRecords < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d input records committed before the deadline", committedRecords, n)
		}
		fetches := sess.PollRecords(ctx, 40) // several transactions, not one
		for _, fe := range fetches.Errors() {
			t.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		promise := kgo.AbortingFirstErrPromise(sess.Client())
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: transform(r.Value), Headers: r.Headers}, promise.Promise())
		}
		wantCommit := aborted > 0 // the first one is aborted deliberately
		if !wantCommit {
			// End(TryAbort) drops records still buffered; flush so the aborted records
			// really are in the output log, where read_committed must not see them.
			if err := sess.Client().Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
		committed, err := sess.End(ctx, kgo.TransactionEndTry(wantCommit && promise.Err() == nil))
		if err != nil {
			t.Fatalf("end transaction: %v (produce: %v)", err, promise.Err())
		}
		if !wantCommit {
			if committed {
				t.Fatal("a transaction ended with TryAbort reports committed")
			}
			aborted++
			continue
		}
		if committed {
			committedRecords += len(recs)
			transactions++
		}
	}
	if committedRecords != n {
		t.Fatalf("committed %d input records, want %d (some consumed twice)", committedRecords, n)
	}
	t.Logf("%d committed transactions, %d aborted", transactions, aborted)

	reader := newClient(t, shared.Addr, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := consumeN(t, reader, n, 30*time.Second)
	expectQuiet(t, reader, 500*time.Millisecond)
	var want, have []string
	for _, r := range input {
		want = append(want, string(r.Key)+"|"+string(transform(r.Value)))
	}
	perKey := map[string][]string{}
	for _, r := range got {
		have = append(have, string(r.Key)+"|"+string(r.Value))
		perKey[string(r.Key)] = append(perKey[string(r.Key)], string(r.Value))
	}
	sort.Strings(want)
	sort.Strings(have)
	if fmt.Sprint(want) != fmt.Sprint(have) {
		t.Fatalf("read_committed output differs from the transformed input (%d vs %d records)", len(have), len(want))
	}
	for key, values := range perKey {
		if !sort.StringsAreSorted(values) { // values embed a zero-padded sequence number
			t.Fatalf("key %s: output out of input order", key)
		}
	}
	checkContiguous(t, got, true)

	// The aborted transaction's records are in the log: read_uncommitted sees them.
	dirty := newClient(t, shared.Addr, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if all := consumeN(t, dirty, n+1, 30*time.Second); len(all) <= n {
		t.Fatalf("read_uncommitted saw %d records, want the aborted ones as well", len(all))
	}

	ends, err := adm.ListEndOffsets(testCtx(t, 10*time.Second), in)
	if err != nil {
		t.Fatal(err)
	}
	offsets, err := adm.FetchOffsets(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(lo kadm.ListedOffset) {
		c, ok := offsets.Lookup(in, lo.Partition)
		if !ok || c.Err != nil || c.At != lo.Offset {
			t.Fatalf("input partition %d: committed %+v, want %d", lo.Partition, c, lo.Offset)
		}
	})
}

// A plain transactional producer: an aborted transaction is invisible to read_committed,
// the committed one after it is visible in full, and the last stable offset reaches the end.
func TestKgoTransactionAbortInvisible(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "txn")
	createTopic(t, adm, topic, 1, nil)
	cl := newClient(t, shared.Addr, kgo.TransactionalID(uniqueName(t, "txid")), kgo.DefaultProduceTopic(topic))
	ctx := testCtx(t, 60*time.Second)
	produceTxn := func(prefix string, count int, commit kgo.TransactionEndTry) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var recs []*kgo.Record
		for i := 0; i < count; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(prefix), Value: []byte(fmt.Sprintf("%s-%03d", prefix, i))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", prefix, err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	produceTxn("aborted", 50, kgo.TryAbort)
	produceTxn("committed", 30, kgo.TryCommit)
	produceTxn("aborted2", 20, kgo.TryAbort)

	rc := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := consumeN(t, rc, 30, 30*time.Second)
	expectQuiet(t, rc, 500*time.Millisecond)
	for i, r := range got {
		if want := fmt.Sprintf("committed-%03d", i); string(r.Value) != want {
			t.Fatalf("read_committed record %d = %q, want %q", i, r.Value, want)
		}
	}
	ru := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	all := consumeN(t, ru, 100, 30*time.Second)
	if string(all[0].Value) != "aborted-000" || string(all[99].Value) != "aborted2-019" {
		t.Fatalf("read_uncommitted: first %q last %q", all[0].Value, all[99].Value)
	}
	// 100 data records + 3 control markers: the committed end offset is past all of them.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if lo, _ := ends.Lookup(topic, 0); lo.Offset != 103 {
		t.Fatalf("end offset %d, want 103 (100 records and 3 markers)", lo.Offset)
	}
}

// While a transaction is open, the last stable offset holds at its first record:
// ListOffsets with read_committed answers it, a read_committed consumer stops there and
// reads the records only after the commit; a second producer with the same transactional
// id fences the first.
func TestKgoOpenTransactionLastStableOffsetAndFencing(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "lso")
	createTopic(t, adm, topic, 1, nil)
	ctx := testCtx(t, 60*time.Second)
	plain := newClient(t, shared.Addr, kgo.DefaultProduceTopic(topic))
	var before []*kgo.Record
	for i := 0; i < 5; i++ {
		before = append(before, &kgo.Record{Value: []byte(fmt.Sprintf("plain-%d", i))})
	}
	if err := plain.ProduceSync(ctx, before...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txid := uniqueName(t, "lso-txid")
	txn := newClient(t, shared.Addr, kgo.TransactionalID(txid), kgo.DefaultProduceTopic(topic))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var inTxn []*kgo.Record
	for i := 0; i < 4; i++ {
		inTxn = append(inTxn, &kgo.Record{Value: []byte(fmt.Sprintf("txn-%d", i))})
	}
	if err := txn.ProduceSync(ctx, inTxn...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := stable.Lookup(topic, 0); s.Offset != 5 {
		t.Fatalf("read_committed end offset %d during the transaction, want 5 (its first record)", s.Offset)
	}
	if e, _ := end.Lookup(topic, 0); e.Offset != 9 {
		t.Fatalf("read_uncommitted end offset %d, want 9", e.Offset)
	}
	rc := newClient(t, shared.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := consumeN(t, rc, 5, 20*time.Second)
	expectQuiet(t, rc, 500*time.Millisecond)
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got = append(got, consumeN(t, rc, 4, 20*time.Second)...)
	for i, r := range got {
		want := fmt.Sprintf("plain-%d", i)
		if i >= 5 {
			want = fmt.Sprintf("txn-%d", i-5)
		}
		if string(r.Value) != want {
			t.Fatalf("read_committed record %d = %q, want %q", i, r.Value, want)
		}
	}

	// Fencing: a new producer with the same id bumps the epoch; the old one is refused.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	successor := newClient(t, shared.Addr, kgo.TransactionalID(txid), kgo.DefaultProduceTopic(topic))
	if err := successor.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := successor.ProduceSync(ctx, &kgo.Record{Value: []byte("successor")}).FirstErr(); err != nil {
		t.Fatalf("successor produce: %v", err)
	}
	if err := successor.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("successor commit: %v", err)
	}
	zombieErr := txn.EndTransaction(ctx, kgo.TryCommit)
	if zombieErr == nil {
		t.Fatal("the fenced producer committed")
	}
	if !errors.Is(zombieErr, kerr.ProducerFenced) && !errors.Is(zombieErr, kerr.InvalidProducerEpoch) {
		t.Fatalf("fenced producer's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", zombieErr)
	}
	rest := consumeN(t, rc, 1, 20*time.Second)
	expectQuiet(t, rc, 500*time.Millisecond)
	if string(rest[0].Value) != "successor" {
		t.Fatalf("after fencing, read_committed got %q, want only the successor's record", rest[0].Value)
	}
}
