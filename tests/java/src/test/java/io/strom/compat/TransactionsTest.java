package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transactions with the Java producer (the classic guarantees; KIP-890's transaction version 2
 * is TransactionsV2Test's), and the AdminClient's view of them.
 */
class TransactionsTest {
  @RegisterExtension
  static final StromBroker BROKER = new StromBroker().set("group.initial.rebalance.delay.ms", "200");

  private static KafkaProducer<byte[], byte[]> transactional(String id) {
    KafkaProducer<byte[], byte[]> p =
        BROKER.producer(
            Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, id,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000"));
    p.initTransactions();
    return p;
  }

  private static Map<String, Object> readCommitted(String group) {
    Map<String, Object> m = new HashMap<>();
    m.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    if (group != null) {
      m.put(ConsumerConfig.GROUP_ID_CONFIG, group);
      m.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    }
    return m;
  }

  private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
    List<String> out = new ArrayList<>();
    records.forEach(r -> out.add(new String(r.value())));
    return out;
  }

  /**
   * Committed transactions are read, aborted ones are not, by a read_committed consumer; a
   * read_uncommitted one sees both (the aborted records are really in the log).
   */
  @Test
  void readCommittedSeesCommittedTransactionsOnly() throws Exception {
    String topic = "txn-basic";
    BROKER.createTopic(topic, 2);
    try (KafkaProducer<byte[], byte[]> p = transactional("txn-basic-producer")) {
      p.beginTransaction();
      for (int i = 0; i < 3; i++) {
        p.send(new ProducerRecord<>(topic, i % 2, null, ("c1-" + i).getBytes()));
      }
      p.commitTransaction();
      p.beginTransaction();
      for (int i = 0; i < 3; i++) {
        p.send(new ProducerRecord<>(topic, i % 2, null, ("a-" + i).getBytes()));
      }
      p.flush();
      p.abortTransaction();
      p.beginTransaction();
      p.send(new ProducerRecord<>(topic, 0, null, "c2-0".getBytes()));
      p.commitTransaction();
    }
    // 3 + 1 committed; with the control markers the partitions' end offsets are higher.
    List<String> committed = values(Records.readAll(BROKER, topic, 2, 4, readCommitted(null)));
    assertEquals(Set.of("c1-0", "c1-1", "c1-2", "c2-0"), Set.copyOf(committed));
    List<String> everything = values(Records.readAll(BROKER, topic, 2, 7, Map.of()));
    assertEquals(7, everything.size());
    assertTrue(everything.containsAll(List.of("a-0", "a-1", "a-2")));
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(readCommitted(null))) {
      TopicPartition p0 = new TopicPartition(topic, 0);
      TopicPartition p1 = new TopicPartition(topic, 1);
      c.assign(List.of(p0, p1));
      // p0: c1-0 c1-2 | commit | a-0 a-2 | abort | c2-0 | commit = 5 records + 3 markers
      assertEquals(Map.of(p0, 8L, p1, 4L), c.endOffsets(List.of(p0, p1)));
    }
  }

  /**
   * Consume-transform-produce: sendOffsetsToTransaction commits the group's offsets with the
   * output records; an aborted round leaves both the output and the offsets untouched.
   */
  @Test
  void sendOffsetsToTransactionCommitsOffsetsAtomically() throws Exception {
    String in = "txn-in";
    String out = "txn-out";
    String group = "txn-eos-group";
    BROKER.createTopic(in, 1);
    BROKER.createTopic(out, 1);
    try (KafkaProducer<byte[], byte[]> p = BROKER.producer()) {
      for (int i = 0; i < 10; i++) {
        p.send(new ProducerRecord<>(in, ("in-" + i).getBytes())).get(30, TimeUnit.SECONDS);
      }
    }
    TopicPartition inTp = new TopicPartition(in, 0);
    try (KafkaProducer<byte[], byte[]> p = transactional("txn-eos-producer");
        KafkaConsumer<byte[], byte[]> c = BROKER.consumer(readCommitted(group))) {
      c.subscribe(List.of(in));
      List<ConsumerRecord<byte[], byte[]>> first = Records.poll(c, 10);
      // Round 1: the first 6 inputs, committed.
      p.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : first.subList(0, 6)) {
        p.send(new ProducerRecord<>(out, ("out-" + new String(r.value())).getBytes()));
      }
      p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(6)), c.groupMetadata());
      p.commitTransaction();
      assertEquals(6, c.committed(Set.of(inTp)).get(inTp).offset());
      // Round 2: the other 4, aborted: neither output nor offset moves.
      p.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : first.subList(6, 10)) {
        p.send(new ProducerRecord<>(out, ("out-" + new String(r.value())).getBytes()));
      }
      p.sendOffsetsToTransaction(Map.of(inTp, new OffsetAndMetadata(10)), c.groupMetadata());
      p.abortTransaction();
      assertEquals(6, c.committed(Set.of(inTp)).get(inTp).offset());
    }
    List<String> output = values(Records.readAll(BROKER, out, 1, 6, readCommitted(null)));
    List<String> want = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      want.add("out-in-" + i);
    }
    assertEquals(want, output);
  }

  /**
   * A second producer with the same transactional.id fences the first: the old one's next
   * transactional call fails with ProducerFencedException, its open transaction is aborted,
   * and the new one commits.
   */
  @Test
  void sameTransactionalIdFencesTheOldProducer() throws Exception {
    String topic = "txn-fence";
    BROKER.createTopic(topic, 1);
    KafkaProducer<byte[], byte[]> old = transactional("txn-fenced");
    try {
      old.beginTransaction();
      old.send(new ProducerRecord<>(topic, "zombie".getBytes())).get(30, TimeUnit.SECONDS);
      try (KafkaProducer<byte[], byte[]> fresh = transactional("txn-fenced")) {
        KafkaException e = assertThrows(KafkaException.class, old::commitTransaction);
        Throwable cause = e instanceof ProducerFencedException ? e : e.getCause();
        assertInstanceOf(ProducerFencedException.class, cause, e.toString());
        fresh.beginTransaction();
        fresh.send(new ProducerRecord<>(topic, "live".getBytes()));
        fresh.commitTransaction();
      }
    } finally {
      old.close(Duration.ZERO);
    }
    assertEquals(List.of("live"), values(Records.readAll(BROKER, topic, 1, 1, readCommitted(null))));
  }

  /**
   * The AdminClient sees an open transaction (listTransactions, describeTransactions,
   * describeProducers) and abortTransaction ends a hanging one, so read_committed consumers
   * move past it.
   */
  @Test
  void adminListsDescribesAndAbortsAHangingTransaction() throws Exception {
    String topic = "txn-hanging";
    BROKER.createTopic(topic, 1);
    TopicPartition tp = new TopicPartition(topic, 0);
    KafkaProducer<byte[], byte[]> hanging = transactional("txn-hanging-producer");
    try (Admin admin = BROKER.admin()) {
      hanging.beginTransaction();
      hanging.send(new ProducerRecord<>(topic, "open".getBytes())).get(30, TimeUnit.SECONDS);

      List<TransactionListing> listed = new ArrayList<>(admin.listTransactions().all().get(30, TimeUnit.SECONDS));
      TransactionListing mine =
          listed.stream()
              .filter(t -> t.transactionalId().equals("txn-hanging-producer"))
              .findFirst()
              .orElseThrow(() -> new AssertionError("not listed: " + listed));
      assertEquals(TransactionState.ONGOING, mine.state());
      TransactionDescription d =
          admin
              .describeTransactions(List.of("txn-hanging-producer"))
              .description("txn-hanging-producer")
              .get(30, TimeUnit.SECONDS);
      assertEquals(TransactionState.ONGOING, d.state());
      assertEquals(Set.of(tp), d.topicPartitions());
      assertEquals(mine.producerId(), d.producerId());

      ProducerState state =
          admin.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers().get(0);
      assertEquals(d.producerId(), state.producerId());
      assertEquals(0L, state.currentTransactionStartOffset().orElse(-1L));

      // The open transaction holds the last stable offset at 0.
      try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(readCommitted(null))) {
        c.assign(List.of(tp));
        assertEquals(Map.of(tp, 0L), c.endOffsets(List.of(tp)));
      }
      admin
          .abortTransaction(
              new AbortTransactionSpec(
                  tp, state.producerId(), (short) state.producerEpoch(), state.coordinatorEpoch().orElse(-1)))
          .all()
          .get(30, TimeUnit.SECONDS);
      try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(readCommitted(null))) {
        c.assign(List.of(tp));
        assertEquals(Map.of(tp, 2L), c.endOffsets(List.of(tp)), "record and abort marker are stable");
        c.seekToBeginning(List.of(tp));
        assertTrue(c.poll(Duration.ofSeconds(1)).isEmpty(), "the aborted record is not read");
      }
      assertTrue(
          admin.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers().stream()
              .allMatch(s -> s.currentTransactionStartOffset().isEmpty()));
    } finally {
      hanging.close(Duration.ZERO);
    }
  }
}
