package compat

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// liveMember polls with BlockRebalanceOnPoll and commits what it read before allowing a
// rebalance, so a partition changes hands only at a committed position: across members
// joining and leaving, every record is read exactly once.
type liveMember struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	got  []*kgo.Record
	err  error
}

func startLiveMember(t *testing.T, topic, group string, opts ...kgo.Opt) *liveMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(shared.Addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
	}
	if os.Getenv("STROM_GO_DEBUG") != "" {
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") })))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m := &liveMember{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer cl.Close()
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fetches := cl.PollRecords(ctx, 200)
			cancel()
			recs := fetches.Records()
			if len(recs) > 0 {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := cl.CommitRecords(cctx, recs...)
				ccancel()
				m.mu.Lock()
				m.got = append(m.got, recs...)
				if err != nil && m.err == nil {
					m.err = fmt.Errorf("commit: %w", err)
				}
				m.mu.Unlock()
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *liveMember) leave() {
	close(m.stop)
	<-m.done
}

func (m *liveMember) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

// Records keep flowing while members join and leave: one member, then three, then two,
// and the survivors must read every record exactly once and commit the end offsets.
func TestKgoGroupMembersJoinAndLeaveUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic-cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"classic-range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"kip848-uniform", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm := newAdmin(t, shared.Addr)
			topic := uniqueName(t, "churn")
			group := uniqueName(t, "churn-g")
			const partitions = 6
			createTopic(t, adm, topic, partitions, nil)

			// The producer runs until told to finish (bounded by maxRounds), so records keep
			// arriving through every membership change.
			prod := newClient(t, shared.Addr, kgo.ProducerLinger(2*time.Millisecond))
			const maxRounds, perRound = 600, 20
			finish := make(chan struct{})
			produced := make(chan error, 1)
			var wantMu sync.Mutex
			var want []*kgo.Record
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				for r := 0; r < maxRounds; r++ {
					select {
					case <-finish:
						produced <- nil
						return
					default:
					}
					var batch []*kgo.Record
					for i := r * perRound; i < (r+1)*perRound; i++ {
						batch = append(batch, testRecordKeys(topic, i, 60)) // every partition gets records
					}
					if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
						produced <- err
						return
					}
					wantMu.Lock()
					want = append(want, batch...)
					wantMu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
				produced <- fmt.Errorf("the producer ran all %d rounds before the membership changes finished", maxRounds)
			}()

			var members []*liveMember
			defer func() {
				for _, m := range members {
					select {
					case <-m.done:
					default:
						m.leave()
					}
				}
			}()
			total := func() int {
				n := 0
				for _, m := range members {
					n += m.count()
				}
				return n
			}
			members = append(members, startLiveMember(t, topic, group, tc.opts...))
			waitFor(t, "the first member to read", 30*time.Second, func() bool { return total() > 0 })
			members = append(members, startLiveMember(t, topic, group, tc.opts...))
			members = append(members, startLiveMember(t, topic, group, tc.opts...))
			waitFor(t, "the newcomers to read", 30*time.Second, func() bool {
				return members[1].count() > 0 && members[2].count() > 0
			})
			members[0].leave()
			before := members[1].count() + members[2].count()
			waitFor(t, "the survivors to read on", 30*time.Second, func() bool {
				return members[1].count()+members[2].count() > before+100
			})
			close(finish)
			if err := <-produced; err != nil {
				t.Fatalf("produce: %v", err)
			}
			waitFor(t, "every record read", 60*time.Second, func() bool { return total() >= len(want) })
			time.Sleep(500 * time.Millisecond) // room for a duplicate
			for _, m := range members[1:] {
				m.leave()
			}
			var all []*kgo.Record
			for i, m := range members {
				if m.err != nil {
					t.Fatalf("member %d: %v", i, m.err)
				}
				t.Logf("member %d read %d", i, len(m.got))
				all = append(all, m.got...)
			}
			// Per partition in offset order: a partition that changed hands is one sequence.
			sort.Slice(all, func(i, j int) bool {
				if all[i].Partition != all[j].Partition {
					return all[i].Partition < all[j].Partition
				}
				return all[i].Offset < all[j].Offset
			})
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
				if lo.Offset == 0 {
					t.Fatalf("partition %d got no records: the test's keys should cover every partition", lo.Partition)
				}
				if !ok || c.Err != nil || c.At != lo.Offset {
					t.Fatalf("partition %d: committed %+v, want %d", lo.Partition, c, lo.Offset)
				}
			})
		})
	}
}

// Static membership (group.instance.id): a member that restarts with its instance id
// within the session timeout gets its partitions back and resumes at its commit.
func TestKgoStaticMemberRestart(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "static")
	group := uniqueName(t, "static-g")
	createTopic(t, adm, topic, 2, nil)
	prod := newClient(t, shared.Addr)
	var want []*kgo.Record
	for i := 0; i < 200; i++ {
		want = append(want, testRecord(topic, i))
	}
	if err := prod.ProduceSync(testCtx(t, 20*time.Second), want[:100]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.InstanceID("static-1"), kgo.Balancers(kgo.CooperativeStickyBalancer())}
	m := startLiveMember(t, topic, group, opts...)
	waitFor(t, "the first 100 records", 30*time.Second, func() bool { return m.count() >= 100 })
	m.leave() // a static member's Close does not leave the group
	first := m.got

	described, err := adm.DescribeGroups(testCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := described[group]; len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "static-1" {
		t.Fatalf("after the static member closed, described members %+v: want it still present", g.Members)
	}
	if err := prod.ProduceSync(testCtx(t, 20*time.Second), want[100:]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	m2 := startLiveMember(t, topic, group, opts...)
	defer m2.leave()
	waitFor(t, "the restarted member to read the next 100", 30*time.Second, func() bool { return m2.count() >= 100 })
	time.Sleep(300 * time.Millisecond)
	m2.mu.Lock()
	second := append([]*kgo.Record{}, m2.got...)
	m2.mu.Unlock()
	checkRoundTrip(t, want, append(append([]*kgo.Record{}, first...), second...))
}
