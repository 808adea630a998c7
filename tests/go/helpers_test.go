package compat

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newClient is a kgo client on addr, closed when the test ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t *testing.T, addr string) *kadm.Client {
	return kadm.NewClient(newClient(t, addr))
}

// createTopic creates a topic with the given partitions (replication factor 1) and fails
// the test on any error.
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
}

// consumeN polls until n records arrived or the deadline passes; it fails the test on
// fetch errors and when fewer than n arrive.
func consumeN(t *testing.T, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the %s deadline", len(out), n, timeout)
		}
		for _, fe := range fetches.Errors() {
			t.Fatalf("fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		out = append(out, fetches.Records()...)
	}
	return out
}

// expectQuiet polls for wait and fails if any record arrives (nothing duplicated, nothing
// aborted leaking through).
func expectQuiet(t *testing.T, cl *kgo.Client, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if recs := fetches.Records(); len(recs) > 0 {
			t.Fatalf("expected no more records, got %d more, first %s/%d@%d %q", len(recs),
				recs[0].Topic, recs[0].Partition, recs[0].Offset, recs[0].Value)
		}
	}
}

// checkContiguous asserts that per partition the offsets run base, base+1, ... with no gap
// and no repeat (control records of transactions excepted: allowGaps).
func checkContiguous(t *testing.T, recs []*kgo.Record, allowGaps bool) {
	t.Helper()
	byPart := map[string][]int64{}
	for _, r := range recs {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		byPart[k] = append(byPart[k], r.Offset)
	}
	for k, offs := range byPart {
		for i := 1; i < len(offs); i++ {
			if offs[i] <= offs[i-1] {
				t.Fatalf("%s: offset %d after %d (not increasing)", k, offs[i], offs[i-1])
			}
			if !allowGaps && offs[i] != offs[i-1]+1 {
				t.Fatalf("%s: offset %d after %d (gap)", k, offs[i], offs[i-1])
			}
		}
	}
}

func sortedStrings(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func equalHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// assignmentSplit reports whether the members' assignments are disjoint and together
// cover partitions 0..n-1 of topic, each member holding at least one.
func assignmentSplit(assigned []map[int32]bool, n int32) bool {
	seen := map[int32]int{}
	for _, m := range assigned {
		if len(m) == 0 {
			return false
		}
		for p := range m {
			seen[p]++
		}
	}
	if int32(len(seen)) != n {
		return false
	}
	for p, c := range seen {
		if p < 0 || p >= n || c != 1 {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
