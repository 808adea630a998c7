package compat

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SCRAM users and ACLs through kadm, enforced on a franz-go client that logs in with
// SCRAM-SHA-256 and SCRAM-SHA-512: denied, allowed by an ACL, denied again once deleted.
func TestKadmScramAndACLs(t *testing.T) {
	b := startBroker(t, map[string]string{
		"listeners":             "PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{second_port}",
		"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":           "User:ANONYMOUS",
	})
	adm := newAdmin(t, b.Addr)
	ctx := testCtx(t, 90*time.Second)
	const password = "go-Pa55word"
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: password},
		{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password},
	})
	if err != nil || altered.AllFailed() || altered.Error() != nil {
		t.Fatalf("AlterUserSCRAMs: %v %v", err, altered.Error())
	}
	described, err := adm.DescribeUserSCRAMs(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	creds := described["alice"].CredInfos
	if described["alice"].Err != nil || len(creds) != 2 {
		t.Fatalf("DescribeUserSCRAMs: %+v", described["alice"])
	}
	iterations := map[kadm.ScramMechanism]int32{}
	for _, c := range creds {
		iterations[c.Mechanism] = c.Iterations
	}
	if iterations[kadm.ScramSha256] != 4096 || iterations[kadm.ScramSha512] != 8192 {
		t.Fatalf("described iterations %v", iterations)
	}

	topic := "guarded"
	createTopic(t, adm, topic, 1, nil)
	auth := scram.Auth{User: "alice", Pass: password}
	for name, mech := range map[string]kgo.Opt{
		"SCRAM-SHA-256": kgo.SASL(auth.AsSha256Mechanism()),
		"SCRAM-SHA-512": kgo.SASL(auth.AsSha512Mechanism()),
	} {
		alice := newClient(t, b.SecondAddr, mech, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(2),
			kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
		if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("denied")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("%s: produce without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", name, err)
		}
	}
	wrong := newClient(t, b.SecondAddr, kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()),
		kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(5*time.Second), kgo.DisableIdempotentWrite())
	if err := wrong.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	acl := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics(topic).Operations(kadm.OpWrite, kadm.OpDescribe).
		ResourcePatternType(kadm.ACLPatternLiteral)
	created, err := adm.CreateACLs(ctx, acl)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range created {
		if c.Err != nil {
			t.Fatalf("CreateACLs: %v", c.Err)
		}
	}
	listed, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics(topic).
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	var ops []kadm.ACLOperation
	for _, l := range listed {
		if l.Err != nil {
			t.Fatal(l.Err)
		}
		for _, d := range l.Described {
			ops = append(ops, d.Operation)
		}
	}
	if len(ops) != 2 {
		t.Fatalf("DescribeACLs: operations %v, want WRITE and DESCRIBE", ops)
	}
	alice := newClient(t, b.SecondAddr, kgo.SASL(auth.AsSha512Mechanism()), kgo.DefaultProduceTopic(topic))
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("allowed")}).FirstErr(); err != nil {
		t.Fatalf("produce with WRITE allowed: %v", err)
	}
	// READ is not granted: alice cannot consume.
	reader := newClient(t, b.SecondAddr, kgo.SASL(auth.AsSha256Mechanism()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fctx := testCtx(t, 10*time.Second)
	fetches := reader.PollFetches(fctx)
	var readErr error
	fetches.EachError(func(_ string, _ int32, err error) { readErr = err })
	if !errors.Is(readErr, kerr.TopicAuthorizationFailed) || len(fetches.Records()) != 0 {
		t.Fatalf("fetch without READ: %v, %d records", readErr, len(fetches.Records()))
	}

	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics(topic).
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range deleted {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		n += len(d.Deleted)
	}
	if n != 2 {
		t.Fatalf("DeleteACLs removed %d, want 2", n)
	}
	denied := newClient(t, b.SecondAddr, kgo.SASL(auth.AsSha256Mechanism()), kgo.DefaultProduceTopic(topic),
		kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
	if err := denied.ProduceSync(ctx, &kgo.Record{Value: []byte("denied again")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce after the ACL was deleted: %v", err)
	}

	// Only the allowed record is in the log.
	su := newClient(t, b.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, su, 1, 20*time.Second)
	if string(got[0].Value) != "allowed" {
		t.Fatalf("log holds %q", got[0].Value)
	}
	expectQuiet(t, su, 300*time.Millisecond)
}
