//! The transaction state machine without I/O: the runtime's write-then-install is played
//! by `apply`, markers are checked as data.

use strom_protocol::ErrorCode;

use super::state::*;

const LIMITS: TxnLimits = TxnLimits {
    max_timeout_ms: 900_000,
    id_expiration_ms: 604_800_000,
};

fn ids(producer_id: i64, producer_epoch: i16) -> ProducerIdAndEpoch {
    ProducerIdAndEpoch {
        producer_id,
        producer_epoch,
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (topic.to_string(), partition)
}

/// Installs a transition as the runtime does, completing it if it writes markers; returns
/// the markers written.
fn apply(machine: &mut TxnStateMachine, transition: Transition, now_ms: i64) -> Option<Markers> {
    let markers = transition.markers.clone();
    let id = transition.write.transactional_id.clone();
    machine.install(transition.write);
    if markers.is_some() {
        let completion = machine.complete(&id, now_ms).expect("preparing");
        machine.install(completion.write);
    }
    markers
}

fn init(machine: &mut TxnStateMachine, id: &str, now_ms: i64) -> ProducerIdAndEpoch {
    let mut next_id = 1000;
    loop {
        let outcome = machine
            .init_producer_id(id, 60_000, None, now_ms, || {
                next_id += 1;
                Ok(next_id)
            })
            .expect("init");
        match outcome {
            InitOutcome::Ready(ids) => return ids,
            InitOutcome::Write(transition) => {
                let fencing = transition.markers.is_some();
                let ids = ids(
                    transition.write.producer_id,
                    transition.write.producer_epoch,
                );
                apply(machine, transition, now_ms);
                if !fencing {
                    return ids;
                }
            }
        }
    }
}

fn begin(
    machine: &mut TxnStateMachine,
    id: &str,
    producer: ProducerIdAndEpoch,
    parts: &[TopicPartition],
    now_ms: i64,
) {
    if let Some(transition) = machine.add_partitions(id, producer, parts, now_ms).unwrap() {
        assert!(apply(machine, transition, now_ms).is_none());
    }
}

#[test]
fn given_a_new_transactional_id_when_initialised_should_get_a_fresh_id_at_epoch_0_then_bumps() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let first = init(&mut machine, "t", 0);
    assert_eq!(first, ids(1001, 0));
    let second = init(&mut machine, "t", 1);
    assert_eq!(
        second,
        ids(1001, 1),
        "same id, epoch bumped: the first instance is fenced"
    );
    assert_eq!(
        machine.add_partitions("t", first, &[tp("a", 0)], 2),
        Err(ErrorCode::ProducerFenced)
    );
    assert_eq!(machine.get("t").unwrap().state, TxnState::Empty);
}

#[test]
fn given_an_open_transaction_when_committed_should_mark_every_partition_then_complete() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0), tp("b", 2)], 10);
    begin(&mut machine, "t", producer, &[tp("a", 1)], 11);
    let open = machine.get("t").unwrap();
    assert_eq!(open.state, TxnState::Ongoing);
    assert_eq!(open.txn_start_ms, 10, "the start is the first add");
    assert_eq!(machine.verify("t", producer, &tp("a", 1)), Ok(()));
    assert_eq!(
        machine.verify("t", producer, &tp("a", 2)),
        Err(ErrorCode::InvalidTxnState),
        "a partition never added may not be written"
    );

    let transition = machine
        .end_transaction("t", producer, TxnResult::Commit, 20)
        .unwrap()
        .unwrap();
    assert_eq!(transition.write.state, TxnState::PrepareCommit);
    let markers = apply(&mut machine, transition, 21).unwrap();
    assert_eq!(markers.result, TxnResult::Commit);
    assert_eq!(markers.partitions, vec![tp("a", 0), tp("a", 1), tp("b", 2)]);
    assert_eq!((markers.producer_id, markers.producer_epoch), (1001, 0));
    let done = machine.get("t").unwrap();
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    assert_eq!(done.txn_start_ms, -1);

    // A retried EndTxn after completion succeeds without markers; the opposite result is
    // refused.
    assert_eq!(
        machine.end_transaction("t", producer, TxnResult::Commit, 22),
        Ok(None)
    );
    assert_eq!(
        machine.end_transaction("t", producer, TxnResult::Abort, 22),
        Err(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        machine.verify("t", producer, &tp("a", 0)),
        Err(ErrorCode::InvalidTxnState),
        "no writes after the end"
    );
}

#[test]
fn given_an_end_in_progress_when_ended_again_should_be_concurrent_and_adds_wait() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0)], 1);
    let transition = machine
        .end_transaction("t", producer, TxnResult::Abort, 2)
        .unwrap()
        .unwrap();
    machine.install(transition.write); // markers not yet written
    assert_eq!(
        machine.end_transaction("t", producer, TxnResult::Abort, 3),
        Err(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        machine.end_transaction("t", producer, TxnResult::Commit, 3),
        Err(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        machine.add_partitions("t", producer, &[tp("a", 1)], 3),
        Err(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(machine.preparing(), vec!["t".to_string()]);
    let markers = machine.markers_of("t").unwrap();
    assert_eq!(markers.result, TxnResult::Abort);
    let completion = machine.complete("t", 4).unwrap();
    assert_eq!(completion.write.state, TxnState::CompleteAbort);
}

#[test]
fn given_nothing_open_when_ended_should_be_invalid_state() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    assert_eq!(
        machine.end_transaction("t", producer, TxnResult::Commit, 1),
        Err(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        machine.end_transaction("nobody", producer, TxnResult::Commit, 1),
        Err(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        machine.end_transaction("t", ids(5, 0), TxnResult::Commit, 1),
        Err(ErrorCode::InvalidProducerIdMapping)
    );
}

#[test]
fn given_an_open_transaction_when_a_new_instance_initialises_should_abort_and_fence_it() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let zombie = init(&mut machine, "t", 0);
    begin(&mut machine, "t", zombie, &[tp("a", 0)], 1);
    let outcome = machine
        .init_producer_id("t", 60_000, None, 2, || unreachable!("same id"))
        .unwrap();
    let InitOutcome::Write(transition) = outcome else {
        panic!("expected a fencing transition")
    };
    let markers = transition.markers.clone().expect("abort markers");
    assert_eq!(markers.result, TxnResult::Abort);
    assert_eq!(markers.producer_epoch, 1, "markers carry the bumped epoch");
    assert_eq!(markers.partitions, vec![tp("a", 0)]);
    apply(&mut machine, transition, 2);
    let fresh = init(&mut machine, "t", 3);
    assert_eq!(fresh, ids(zombie.producer_id, 2));
    assert_eq!(
        machine.end_transaction("t", zombie, TxnResult::Commit, 4),
        Err(ErrorCode::ProducerFenced)
    );
}

#[test]
fn given_a_transaction_past_its_timeout_when_ticked_should_be_listed_and_fenced() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "slow", 0);
    init(&mut machine, "idle", 0);
    begin(&mut machine, "slow", producer, &[tp("a", 0)], 1_000);
    assert!(
        machine.timed_out(61_000).is_empty(),
        "exactly at the timeout is not past it"
    );
    assert_eq!(machine.timed_out(61_001), vec!["slow".to_string()]);
    let current = machine.get("slow").unwrap().clone();
    let transition = machine.fence_and_abort(&current, 61_001);
    assert_eq!(transition.write.producer_epoch, producer.producer_epoch + 1);
    apply(&mut machine, transition, 61_002);
    assert_eq!(machine.get("slow").unwrap().state, TxnState::CompleteAbort);
    assert!(machine.timed_out(100_000).is_empty());
    assert_eq!(
        machine.add_partitions("slow", producer, &[tp("a", 0)], 61_003),
        Err(ErrorCode::ProducerFenced),
        "the timed-out producer is fenced"
    );
}

#[test]
fn given_bad_timeouts_and_stale_ids_when_initialised_should_refuse() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let refuse = |machine: &TxnStateMachine, timeout: i32, expected| {
        machine
            .init_producer_id("t", timeout, expected, 0, || Ok(1))
            .err()
    };
    assert_eq!(
        refuse(&machine, 0, None),
        Some(ErrorCode::InvalidTransactionTimeout)
    );
    assert_eq!(
        refuse(&machine, 900_001, None),
        Some(ErrorCode::InvalidTransactionTimeout)
    );
    assert_eq!(
        refuse(&machine, 1000, Some(ids(1, 0))),
        Some(ErrorCode::InvalidProducerIdMapping)
    );
    let first = init(&mut machine, "t", 0);
    let second = init(&mut machine, "t", 0);
    // KIP-360: the current instance may re-initialise naming its epoch; a retry of that
    // bump (naming the previous epoch) gets the same answer; an older one is fenced.
    let InitOutcome::Write(bump) = machine
        .init_producer_id("t", 1000, Some(second), 1, || unreachable!())
        .unwrap()
    else {
        panic!("expected a bump")
    };
    assert_eq!(bump.write.producer_epoch, second.producer_epoch + 1);
    apply(&mut machine, bump, 1);
    assert_eq!(
        machine.init_producer_id("t", 1000, Some(second), 2, || unreachable!()),
        Ok(InitOutcome::Ready(ids(
            second.producer_id,
            second.producer_epoch + 1
        )))
    );
    assert_eq!(
        refuse(&machine, 1000, Some(first)),
        Some(ErrorCode::ProducerFenced)
    );
}

#[test]
fn given_an_exhausted_epoch_when_initialised_should_move_to_a_new_producer_id() {
    let mut machine = TxnStateMachine::new(LIMITS);
    init(&mut machine, "t", 0);
    let mut current = machine.get("t").unwrap().clone();
    current.producer_epoch = i16::MAX - 1;
    machine.install(current);
    let InitOutcome::Write(transition) = machine
        .init_producer_id("t", 1000, None, 1, || Ok(77))
        .unwrap()
    else {
        panic!("expected a write")
    };
    assert_eq!(
        (
            transition.write.producer_id,
            transition.write.producer_epoch
        ),
        (77, 0)
    );
}

#[test]
fn given_ids_idle_past_expiration_when_checked_should_expire_only_those_without_open_transactions()
{
    let mut machine = TxnStateMachine::new(TxnLimits {
        max_timeout_ms: 900_000,
        id_expiration_ms: 1000,
    });
    init(&mut machine, "idle", 0);
    let open = init(&mut machine, "open", 0);
    begin(&mut machine, "open", open, &[tp("a", 0)], 0);
    assert!(machine.expired(1000).is_empty());
    assert_eq!(machine.expired(1001), vec!["idle".to_string()]);
}

// Transaction version 2 (KIP-890 part 2): EndTxn v5 bumps the epoch on every end.

/// Ends the open transaction at version 2 as the runtime does; the markers written and the
/// producer id and epoch the producer is answered with.
fn end_v2(
    machine: &mut TxnStateMachine,
    producer: ProducerIdAndEpoch,
    result: TxnResult,
    now_ms: i64,
) -> Result<(Option<Markers>, ProducerIdAndEpoch), ErrorCode> {
    let transition = machine.end_transaction_v2("t", producer, result, now_ms, || Ok(5000))?;
    let markers = transition.and_then(|transition| apply(machine, transition, now_ms));
    let current = machine.get("t").unwrap();
    Ok((markers, ids(current.producer_id, current.producer_epoch)))
}

#[test]
fn given_tv2_when_ended_should_bump_the_epoch_write_markers_with_it_and_answer_it() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let mut producer = init(&mut machine, "t", 0);
    for round in 0..3i16 {
        begin(&mut machine, "t", producer, &[tp("a", 0)], 10);
        let result = if round == 1 {
            TxnResult::Abort
        } else {
            TxnResult::Commit
        };
        let (markers, next) = end_v2(&mut machine, producer, result, 20).unwrap();
        let markers = markers.expect("markers written");
        assert_eq!(markers.result, result);
        assert_eq!(next, ids(1001, round + 1), "every end bumps the epoch");
        assert_eq!(
            (markers.producer_id, markers.producer_epoch),
            (1001, round + 1),
            "the markers carry the bumped epoch, so the old epoch is fenced in the log"
        );
        producer = next;
    }
    let done = machine.get("t").unwrap();
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert_eq!(done.last_producer_epoch, 2);
}

#[test]
fn given_tv2_end_when_retried_with_the_old_epoch_should_succeed_without_new_markers() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0)], 10);
    let (_, bumped) = end_v2(&mut machine, producer, TxnResult::Commit, 20).unwrap();
    assert_eq!(bumped, ids(1001, 1));
    assert_eq!(
        end_v2(&mut machine, producer, TxnResult::Commit, 21),
        Ok((None, bumped)),
        "a retry names the epoch before the bump and learns the bumped one"
    );
    assert_eq!(
        end_v2(&mut machine, producer, TxnResult::Abort, 21),
        Err(ErrorCode::InvalidTxnState),
        "a retry with the other result is refused"
    );
    assert_eq!(
        end_v2(&mut machine, bumped, TxnResult::Commit, 21),
        Err(ErrorCode::ProducerFenced),
        "the bumped epoch with nothing open is not a retry: Kafka fences it"
    );
    assert_eq!(
        machine.get("t").unwrap().state,
        TxnState::CompleteCommit,
        "nothing was written"
    );
}

#[test]
fn given_tv2_end_when_a_zombie_uses_an_older_epoch_should_be_fenced_everywhere() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let zombie = init(&mut machine, "t", 0);
    begin(&mut machine, "t", zombie, &[tp("a", 0)], 10);
    let (_, first) = end_v2(&mut machine, zombie, TxnResult::Commit, 20).unwrap();
    begin(&mut machine, "t", first, &[tp("a", 0)], 30);
    let (_, second) = end_v2(&mut machine, first, TxnResult::Commit, 40).unwrap();
    assert_eq!(second, ids(1001, 2));
    assert_eq!(
        end_v2(&mut machine, zombie, TxnResult::Commit, 41),
        Err(ErrorCode::ProducerFenced),
        "two bumps behind is no retry"
    );
    assert_eq!(
        machine.add_partitions("t", zombie, &[tp("a", 0)], 41),
        Err(ErrorCode::ProducerFenced),
        "an implicit add (Produce v12) with an old epoch is fenced"
    );
    assert_eq!(
        machine.add_partitions("t", first, &[tp("a", 0)], 41),
        Err(ErrorCode::ProducerFenced),
        "so is the epoch of the previous transaction"
    );
    assert_eq!(
        end_v2(&mut machine, ids(77, 2), TxnResult::Commit, 41),
        Err(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        machine.end_transaction_v2("nobody", second, TxnResult::Commit, 41, || Ok(1)),
        Err(ErrorCode::InvalidProducerIdMapping)
    );
}

#[test]
fn given_tv2_when_a_write_adds_its_partition_should_start_the_next_transaction_at_the_bumped_epoch()
{
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0)], 10);
    let (_, bumped) = end_v2(&mut machine, producer, TxnResult::Abort, 20).unwrap();
    begin(&mut machine, "t", bumped, &[tp("b", 1)], 30);
    let open = machine.get("t").unwrap();
    assert_eq!(open.state, TxnState::Ongoing);
    assert_eq!(open.txn_start_ms, 30);
    assert_eq!(
        open.partitions.iter().cloned().collect::<Vec<_>>(),
        vec![tp("b", 1)],
        "the ended transaction's partitions are gone"
    );
    assert_eq!(machine.verify("t", bumped, &tp("b", 1)), Ok(()));
    assert_eq!(
        machine.verify("t", producer, &tp("b", 1)),
        Err(ErrorCode::ProducerFenced)
    );
}

#[test]
fn given_tv2_end_in_progress_when_retried_should_be_concurrent_and_same_epoch_fenced() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0)], 10);
    // The runtime installs the prepare write, then the markers fail: still preparing.
    let transition = machine
        .end_transaction_v2("t", producer, TxnResult::Commit, 20, || Ok(5000))
        .unwrap()
        .unwrap();
    assert_eq!(transition.write.producer_epoch, 1);
    machine.install(transition.write);
    assert_eq!(
        machine.end_transaction_v2("t", producer, TxnResult::Commit, 21, || Ok(5000)),
        Err(ErrorCode::ConcurrentTransactions),
        "the retry waits for the markers"
    );
    assert_eq!(
        machine.end_transaction_v2("t", ids(1001, 1), TxnResult::Commit, 21, || Ok(5000)),
        Err(ErrorCode::ProducerFenced),
        "the bumped epoch is not the producer's until the end is answered"
    );
    assert_eq!(
        machine.markers_of("t").map(|m| m.producer_epoch),
        Some(1),
        "a restart writes the markers with the bumped epoch"
    );
}

#[test]
fn given_tv2_and_an_exhausted_epoch_when_ended_should_move_to_a_new_producer_id_at_epoch_0() {
    let mut machine = TxnStateMachine::new(LIMITS);
    init(&mut machine, "t", 0);
    let exhausted = ids(1001, i16::MAX - 1);
    let mut metadata = machine.get("t").unwrap().clone();
    metadata.producer_epoch = exhausted.producer_epoch;
    machine.install(metadata);
    begin(&mut machine, "t", exhausted, &[tp("a", 0)], 10);

    let (markers, next) = end_v2(&mut machine, exhausted, TxnResult::Commit, 20).unwrap();
    let markers = markers.unwrap();
    assert_eq!(
        (markers.producer_id, markers.producer_epoch),
        (1001, i16::MAX),
        "the last epoch of the old id fences it in the log"
    );
    assert_eq!(next, ids(5000, 0), "the producer continues on a new id");
    assert_eq!(machine.get("t").unwrap().previous_producer_id, 1001);
    assert_eq!(
        end_v2(&mut machine, exhausted, TxnResult::Commit, 21),
        Ok((None, ids(5000, 0))),
        "a retry with the old id and epoch learns the new id"
    );
    assert_eq!(
        end_v2(&mut machine, ids(1001, 3), TxnResult::Commit, 21),
        Err(ErrorCode::InvalidProducerIdMapping),
        "any other epoch of the old id is not a retry"
    );
    begin(&mut machine, "t", next, &[tp("a", 0)], 30);
    let (_, after) = end_v2(&mut machine, next, TxnResult::Commit, 40).unwrap();
    assert_eq!(after, ids(5000, 1));
}

#[test]
fn given_tv2_end_when_a_new_instance_initialises_should_bump_past_the_bumped_epoch() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let first = init(&mut machine, "t", 0);
    begin(&mut machine, "t", first, &[tp("a", 0)], 10);
    let (_, bumped) = end_v2(&mut machine, first, TxnResult::Commit, 20).unwrap();
    begin(&mut machine, "t", bumped, &[tp("a", 0)], 30);
    let second = init(&mut machine, "t", 40);
    assert_eq!(
        second,
        ids(1001, 3),
        "the open transaction was aborted at epoch 2, the new instance got 3"
    );
    assert_eq!(machine.get("t").unwrap().state, TxnState::Empty);
    assert_eq!(
        end_v2(&mut machine, bumped, TxnResult::Commit, 41),
        Err(ErrorCode::ProducerFenced)
    );
}

#[test]
fn given_tv1_end_when_ended_should_keep_the_epoch() {
    let mut machine = TxnStateMachine::new(LIMITS);
    let producer = init(&mut machine, "t", 0);
    begin(&mut machine, "t", producer, &[tp("a", 0)], 10);
    let transition = machine
        .end_transaction("t", producer, TxnResult::Commit, 20)
        .unwrap()
        .unwrap();
    let markers = apply(&mut machine, transition, 20).unwrap();
    assert_eq!(markers.producer_epoch, 0);
    let done = machine.get("t").unwrap();
    assert_eq!((done.producer_id, done.producer_epoch), (1001, 0));
    assert_eq!(done.client_transaction_version, 0);
}

/// Found by the coordinator simulation (tests/sim, seed 12): a transaction timing out at
/// the exhausted epoch was aborted without fencing its producer, which then went on at the
/// same epoch and was told its next commit succeeded although part of it was aborted.
#[test]
fn given_an_exhausted_epoch_when_the_transaction_times_out_should_fence_the_producer() {
    for v2 in [false, true] {
        let mut machine = TxnStateMachine::new(LIMITS);
        let first = init(&mut machine, "t", 0);
        let mut current = machine.get("t").unwrap().clone();
        current.producer_epoch = i16::MAX - 1;
        if v2 {
            current.client_transaction_version = TRANSACTION_VERSION_2;
        }
        machine.install(current);
        let producer = ids(first.producer_id, i16::MAX - 1);
        begin(&mut machine, "t", producer, &[tp("a", 0)], 1);
        let current = machine.get("t").unwrap().clone();
        let fence = machine.fence_and_abort(&current, 2);
        let markers = apply(&mut machine, fence, 2).unwrap();
        assert_eq!(markers.producer_epoch, i16::MAX);
        assert_eq!(
            machine.add_partitions("t", producer, &[tp("a", 0)], 3),
            Err(ErrorCode::ProducerFenced)
        );
        // Neither a retried end nor a retried InitProducerId hands out i16::MAX.
        let ended = machine.end_transaction_v2("t", producer, TxnResult::Abort, 3, || Ok(9));
        assert_eq!(ended, Err(ErrorCode::ProducerFenced));
        let again = machine.init_producer_id("t", 1000, Some(producer), 3, || Ok(9));
        assert_eq!(again, Err(ErrorCode::ProducerFenced));
        // A new instance moves to a new producer id.
        let InitOutcome::Write(transition) = machine
            .init_producer_id("t", 1000, None, 4, || Ok(77))
            .unwrap()
        else {
            panic!("expected a write")
        };
        assert_eq!(transition.write.ids(), ids(77, 0));
    }
}
