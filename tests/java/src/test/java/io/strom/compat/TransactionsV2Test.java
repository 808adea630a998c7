package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transactions with the Java 4.x producer on transaction version 2 (KIP-890 part 2): Strom
 * finalizes {@code transaction.version} 2, so the producer sends no AddPartitionsToTxn (Produce
 * v12+ adds the partition), ends with EndTxn v5 and gets a bumped epoch back every time. Asserted
 * through behaviour: the producer epoch the broker reports grows by one per transaction (it stays
 * put on version 1), read_committed sees exactly the committed records, zombies are fenced, and
 * sendOffsetsToTransaction commits the group's offsets with the transaction.
 */
class TransactionsV2Test {
  @RegisterExtension
  static final StromBroker BROKER =
      new StromBroker()
          .set("transaction.state.log.num.partitions", "3")
          .set("offsets.topic.num.partitions", "3");

  private static final Duration WAIT = Duration.ofSeconds(30);

  @Test
  void brokerFinalizesTransactionVersion2() throws Exception {
    try (Admin admin = BROKER.admin()) {
      FeatureMetadata features = admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
      FinalizedVersionRange tv = features.finalizedFeatures().get("transaction.version");
      assertEquals(2, tv.maxVersionLevel(), "finalized " + features.finalizedFeatures());
      assertTrue(features.finalizedFeaturesEpoch().orElse(-1L) >= 0);
    }
  }

  @Test
  void commitAndAbortManyTimesBumpTheEpochAndReadCommittedSeesExactlyTheCommitted()
      throws Exception {
    String topic = "tv2-many";
    int partitions = 2;
    int transactions = 20;
    int perTransaction = 5;
    BROKER.createTopic(topic, partitions);
    // Per partition, in send order: what read_committed must return.
    List<List<String>> committedBy = new ArrayList<>();
    for (int p = 0; p < partitions; p++) {
      committedBy.add(new ArrayList<>());
    }
    List<String> all = new ArrayList<>();
    List<Integer> epochs = new ArrayList<>();
    long producerId;
    try (KafkaProducer<byte[], byte[]> producer = transactional("tv2-many");
        Admin admin = BROKER.admin()) {
      producer.initTransactions();
      producerId = describe(admin, "tv2-many").producerId();
      epochs.add(describe(admin, "tv2-many").producerEpoch());
      for (int t = 0; t < transactions; t++) {
        boolean commit = t % 3 != 1;
        producer.beginTransaction();
        for (int i = 0; i < perTransaction; i++) {
          String value = "t" + t + "-" + i;
          producer.send(new ProducerRecord<>(topic, i % partitions, null, bytes(value)));
          all.add(value);
          if (commit) {
            committedBy.get(i % partitions).add(value);
          }
        }
        if (commit) {
          producer.commitTransaction();
        } else {
          producer.flush();
          producer.abortTransaction();
        }
        TransactionDescription description = describe(admin, "tv2-many");
        assertEquals(producerId, description.producerId(), "no epoch overflow here: same id");
        assertEquals(
            commit ? TransactionState.COMPLETE_COMMIT : TransactionState.COMPLETE_ABORT,
            description.state(),
            "transaction " + t);
        epochs.add(description.producerEpoch());
        // The markers carry the bumped epoch: the partitions' producer state shows it too.
        int onPartition = partitionEpoch(admin, new TopicPartition(topic, 0), producerId);
        assertEquals(description.producerEpoch(), onPartition, "marker epoch on " + topic + "-0");
      }
    }
    for (int t = 1; t < epochs.size(); t++) {
      assertEquals(
          epochs.get(t - 1) + 1,
          (int) epochs.get(t),
          "every EndTxn bumps the epoch by one (transaction version 2): " + epochs);
    }
    List<String> committed =
        committedBy.stream().flatMap(List::stream).collect(Collectors.toList());
    assertEquals(committed, values(read(topic, partitions, committed.size(), "read_committed")));
    assertEquals(
        all.stream().sorted().collect(Collectors.toList()),
        values(read(topic, partitions, all.size(), "read_uncommitted")).stream()
            .sorted()
            .collect(Collectors.toList()),
        "read_uncommitted also sees the aborted records");
  }

  @Test
  void aZombieWithAnOldEpochIsFencedAndItsRecordsNeverCommitted() throws Exception {
    String topic = "tv2-zombie";
    BROKER.createTopic(topic, 1);
    KafkaProducer<byte[], byte[]> zombie = transactional("tv2-zombie");
    try {
      zombie.initTransactions();
      zombie.beginTransaction();
      zombie.send(new ProducerRecord<>(topic, bytes("z-committed"))).get(30, TimeUnit.SECONDS);
      zombie.commitTransaction();
      zombie.beginTransaction();
      zombie.send(new ProducerRecord<>(topic, bytes("z-open"))).get(30, TimeUnit.SECONDS);

      try (KafkaProducer<byte[], byte[]> successor = transactional("tv2-zombie")) {
        // Aborts the zombie's open transaction and bumps the epoch past it.
        successor.initTransactions();
        successor.beginTransaction();
        successor.send(new ProducerRecord<>(topic, bytes("s-1"))).get(30, TimeUnit.SECONDS);
        successor.commitTransaction();

        Exception fenced =
            assertThrows(
                Exception.class,
                () -> {
                  zombie.send(new ProducerRecord<>(topic, bytes("z-late"))).get(30, TimeUnit.SECONDS);
                  zombie.commitTransaction();
                });
        Throwable cause = fenced instanceof ExecutionException ? fenced.getCause() : fenced;
        assertTrue(
            cause instanceof ProducerFencedException
                || cause instanceof InvalidProducerEpochException,
            "zombie fenced, got " + cause);

        successor.beginTransaction();
        successor.send(new ProducerRecord<>(topic, bytes("s-2"))).get(30, TimeUnit.SECONDS);
        successor.commitTransaction();
      }
    } finally {
      zombie.close(Duration.ZERO);
    }
    assertEquals(
        List.of("z-committed", "s-1", "s-2"),
        values(read(topic, 1, 3, "read_committed")),
        "nothing of the zombie after the fence");
  }

  @Test
  void sendOffsetsToTransactionCommitsTheGroupOffsetsOnlyWithACommit() throws Exception {
    String input = "tv2-eos-in";
    String output = "tv2-eos-out";
    String group = "tv2-eos-group";
    BROKER.createTopic(input, 1);
    BROKER.createTopic(output, 1);
    try (KafkaProducer<byte[], byte[]> plain = BROKER.producer()) {
      for (int i = 0; i < 10; i++) {
        plain.send(new ProducerRecord<>(input, bytes("in-" + i))).get(30, TimeUnit.SECONDS);
      }
    }
    TopicPartition in = new TopicPartition(input, 0);
    try (KafkaProducer<byte[], byte[]> producer = transactional("tv2-eos");
        KafkaConsumer<byte[], byte[]> consumer =
            BROKER.consumer(
                Map.of(
                    ConsumerConfig.GROUP_ID_CONFIG, group,
                    ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false",
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
        Admin admin = BROKER.admin()) {
      producer.initTransactions();
      consumer.assign(List.of(in));
      consumer.seekToBeginning(List.of(in));
      List<ConsumerRecord<byte[], byte[]>> first = Records.poll(consumer, 10);

      // Aborted: the first five transformed, offsets sent, then abort — nothing moves.
      producer.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : first.subList(0, 5)) {
        producer.send(new ProducerRecord<>(output, bytes("out-" + string(r.value()))));
      }
      producer.sendOffsetsToTransaction(
          Map.of(in, new OffsetAndMetadata(5)), consumer.groupMetadata());
      producer.abortTransaction();
      assertEquals(null, committedOffset(admin, group, in), "an aborted transaction commits no offset");

      // Committed: all ten, offsets at 10.
      producer.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : first) {
        producer.send(new ProducerRecord<>(output, bytes("out-" + string(r.value()))));
      }
      producer.sendOffsetsToTransaction(
          Map.of(in, new OffsetAndMetadata(10)), consumer.groupMetadata());
      producer.commitTransaction();
      assertEquals(10L, committedOffset(admin, group, in));
    }
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      expected.add("out-in-" + i);
    }
    assertEquals(expected, values(read(output, 1, 10, "read_committed")));
  }

  // ------------------------------------------------------------------ helpers

  private static KafkaProducer<byte[], byte[]> transactional(String id) {
    Map<String, Object> overrides = new HashMap<>();
    overrides.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
    overrides.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000");
    return BROKER.producer(overrides);
  }

  private static TransactionDescription describe(Admin admin, String id) throws Exception {
    return admin.describeTransactions(List.of(id)).description(id).get(30, TimeUnit.SECONDS);
  }

  /** The epoch the partition's producer state holds for {@code producerId}. */
  private static int partitionEpoch(Admin admin, TopicPartition tp, long producerId)
      throws Exception {
    List<ProducerState> states =
        admin.describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS)
            .activeProducers();
    return states.stream()
        .filter(s -> s.producerId() == producerId)
        .findFirst()
        .orElseThrow(() -> new AssertionError("producer " + producerId + " not on " + tp + ": " + states))
        .producerEpoch();
  }

  private static Long committedOffset(Admin admin, String group, TopicPartition tp)
      throws Exception {
    OffsetAndMetadata offset =
        admin
            .listConsumerGroupOffsets(group)
            .partitionsToOffsetAndMetadata()
            .get(30, TimeUnit.SECONDS)
            .get(tp);
    return offset == null ? null : offset.offset();
  }

  private static List<ConsumerRecord<byte[], byte[]>> read(
      String topic, int partitions, int expected, String isolation) {
    return Records.readAll(
        BROKER,
        topic,
        partitions,
        expected,
        Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
  }

  private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
    return records.stream().map(r -> string(r.value())).collect(Collectors.toList());
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String string(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }
}
