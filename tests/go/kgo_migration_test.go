package compat

import (
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Offline migration between group protocols, as an operator does it: stop every classic
// consumer, restart them with the consumer protocol (KIP-848), later back to classic. Each
// generation resumes at the previous one's commits: every record read exactly once overall.
func TestKgoGroupProtocolMigrationKeepsOffsets(t *testing.T) {
	adm := newAdmin(t, shared.Addr)
	topic := uniqueName(t, "migrate")
	group := uniqueName(t, "migrate-g")
	createTopic(t, adm, topic, 2, nil)
	prod := newClient(t, shared.Addr)
	var want []*kgo.Record
	for i := 0; i < 150; i++ {
		want = append(want, testRecordKeys(topic, i, 20))
	}
	classicOpts := []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}
	nextGenOpts := []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer()}
	var all []*kgo.Record
	for i, phase := range []struct {
		name string
		opts []kgo.Opt
	}{{"classic", classicOpts}, {"consumer (KIP-848)", nextGenOpts}, {"classic again", classicOpts}} {
		batch := want[i*50 : (i+1)*50]
		if err := prod.ProduceSync(testCtx(t, 20*time.Second), batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		m := startLiveMember(t, topic, group, phase.opts...)
		waitFor(t, phase.name+" member to read its 50 records", 30*time.Second, func() bool { return m.count() >= 50 })
		time.Sleep(300 * time.Millisecond) // room for a re-read of an earlier phase's records
		m.leave()
		if m.err != nil {
			t.Fatalf("%s: %v", phase.name, m.err)
		}
		if len(m.got) != 50 {
			t.Fatalf("%s member read %d records, want only the 50 new ones", phase.name, len(m.got))
		}
		all = append(all, m.got...)
	}
	checkSameRecords(t, want, sortByPartitionOffset(all), false)
}

func sortByPartitionOffset(recs []*kgo.Record) []*kgo.Record {
	out := append([]*kgo.Record(nil), recs...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}
