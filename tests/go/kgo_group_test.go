package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember is one kgo group consumer and the partitions it holds now.
type groupMember struct {
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
}

func (m *groupMember) snapshot() map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]bool{}
	for p := range m.assigned {
		out[p] = true
	}
	return out
}

func newGroupMember(t *testing.T, topic, group string, opts ...kgo.Opt) *groupMember {
	m := &groupMember{assigned: map[int32]bool{}}
	base := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
		}),
	}
	m.cl = newClient(t, shared.Addr, append(base, opts...)...)
	return m
}

// pollInBackground keeps a member polling (group clients only progress rebalances while
// polled) and collects what it reads until stop is closed.
func pollInBackground(m *groupMember, stop <-chan struct{}, out *[]*kgo.Record, mu *sync.Mutex, errs chan<- error) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fetches := m.cl.PollFetches(ctx)
			cancel()
			for _, fe := range fetches.Errors() {
				if fe.Err == context.DeadlineExceeded || fe.Err == context.Canceled {
					continue
				}
				select {
				case errs <- fmt.Errorf("%s/%d: %w", fe.Topic, fe.Partition, fe.Err):
				default:
				}
			}
			if recs := fetches.Records(); len(recs) > 0 {
				mu.Lock()
				*out = append(*out, recs...)
				mu.Unlock()
				if err := m.cl.CommitRecords(context.Background(), recs...); err != nil {
					select {
					case errs <- fmt.Errorf("commit: %w", err):
					default:
					}
				}
			}
		}
	}()
	return &wg
}

// runTwoMemberGroup starts two members of a fresh group on a 4-partition topic, waits until
// they split the partitions disjointly and completely, then produces and checks that the
// pair read every record exactly once, each from a partition it owned, and committed the
// end offsets.
func runTwoMemberGroup(t *testing.T, opts ...kgo.Opt) (group string, adm *kadm.Client) {
	adm = newAdmin(t, shared.Addr)
	topic := uniqueName(t, "grp")
	group = uniqueName(t, "g")
	const partitions = 4
	createTopic(t, adm, topic, partitions, nil)

	members := []*groupMember{newGroupMember(t, topic, group, opts...), newGroupMember(t, topic, group, opts...)}
	stop := make(chan struct{})
	errs := make(chan error, 8)
	got := make([][]*kgo.Record, 2)
	var mus [2]sync.Mutex
	var wgs []*sync.WaitGroup
	for i, m := range members {
		wgs = append(wgs, pollInBackground(m, stop, &got[i], &mus[i], errs))
	}
	stopped := false
	stopAll := func() {
		if !stopped {
			close(stop)
			for _, wg := range wgs {
				wg.Wait()
			}
			stopped = true
		}
	}
	defer stopAll()

	waitFor(t, "two members to split the partitions", 60*time.Second, func() bool {
		select {
		case err := <-errs:
			t.Fatalf("group consumer: %v", err)
		default:
		}
		return assignmentSplit([]map[int32]bool{members[0].snapshot(), members[1].snapshot()}, partitions)
	})
	owned := []map[int32]bool{members[0].snapshot(), members[1].snapshot()}
	t.Logf("assignment: member0 %v member1 %v", owned[0], owned[1])

	const n = 400
	prod := newClient(t, shared.Addr)
	var want []*kgo.Record
	for i := 0; i < n; i++ {
		want = append(want, testRecord(topic, i))
	}
	if err := prod.ProduceSync(testCtx(t, 30*time.Second), want...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitFor(t, "both members to read every record", 60*time.Second, func() bool {
		select {
		case err := <-errs:
			t.Fatalf("group consumer: %v", err)
		default:
		}
		mus[0].Lock()
		mus[1].Lock()
		defer mus[0].Unlock()
		defer mus[1].Unlock()
		return len(got[0])+len(got[1]) >= n
	})
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	stopAll()

	for i := range members {
		for _, r := range got[i] {
			if !owned[i][r.Partition] {
				t.Fatalf("member %d read partition %d it was not assigned (%v)", i, r.Partition, owned[i])
			}
		}
		if len(got[i]) == 0 {
			t.Fatalf("member %d read nothing", i)
		}
	}
	all := append(append([]*kgo.Record{}, got[0]...), got[1]...)
	checkRoundTrip(t, want, all)

	ends, err := adm.ListEndOffsets(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(lo kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, lo.Partition)
		if !ok || c.Err != nil || c.At != lo.Offset {
			t.Fatalf("partition %d: committed %+v, want %d", lo.Partition, c, lo.Offset)
		}
	})
	return group, adm
}

func TestKgoClassicGroupCooperativeSticky(t *testing.T) {
	group, adm := runTwoMemberGroup(t, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	described, err := adm.DescribeGroups(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[group]
	if g.Err != nil || g.Protocol != "cooperative-sticky" || g.ProtocolType != "consumer" {
		t.Fatalf("described group: err %v protocol %q type %q", g.Err, g.Protocol, g.ProtocolType)
	}
}

func TestKgoClassicGroupRange(t *testing.T) {
	group, adm := runTwoMemberGroup(t, kgo.Balancers(kgo.RangeBalancer()))
	described, err := adm.DescribeGroups(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := described[group]; g.Err != nil || g.Protocol != "range" {
		t.Fatalf("described group: err %v protocol %q", g.Err, g.Protocol)
	}
}

// KIP-848: franz-go 1.22's ServerSideBalancer makes the group use ConsumerGroupHeartbeat, the
// broker assigning partitions (assignor "uniform" for the sticky balancer, "range" for range).
func TestKgoNextGenGroup(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
	}{
		{"uniform", kgo.CooperativeStickyBalancer(), "uniform"},
		{"range", kgo.RangeBalancer(), "range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group, adm := runTwoMemberGroup(t, kgo.Balancers(tc.balancer), kgo.ServerSideBalancer())
			// A classic group would be unknown to ConsumerGroupDescribe: this proves the
			// client did not fall back to JoinGroup.
			described, err := adm.DescribeConsumerGroups(testCtx(t, 10*time.Second), group)
			if err != nil {
				t.Fatal(err)
			}
			g, ok := described[group]
			if !ok || g.Err != nil {
				t.Fatalf("ConsumerGroupDescribe %s: %+v", group, g)
			}
			if g.AssignorName != tc.assignor {
				t.Fatalf("assignor %q, want %q", g.AssignorName, tc.assignor)
			}
			if len(g.Members) != 2 || len(g.AssignedPartitions().Sorted()) != 1 ||
				len(g.AssignedPartitions().Sorted()[0].Partitions) != 4 {
				t.Fatalf("described members %d, assigned %v; want 2 members holding all 4 partitions",
					len(g.Members), g.AssignedPartitions().Sorted())
			}
		})
	}
}
