package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java consumer with group.protocol=classic, and its group-less positioning calls. */
class ConsumerClassicTest {
  // Kafka's 3 s wait for more members of an empty group only slows the tests down.
  @RegisterExtension
  static final StromBroker BROKER = new StromBroker().set("group.initial.rebalance.delay.ms", "200");

  private static Map<String, Object> classic(String group, String assignor) {
    Map<String, Object> m = new HashMap<>();
    m.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    m.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
    m.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
    m.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    m.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
    m.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
    return m;
  }

  static void produce(String topic, int partitions, int perPartition) throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      List<CompletableFuture<?>> acks = new ArrayList<>();
      for (int p = 0; p < partitions; p++) {
        for (int i = 0; i < perPartition; i++) {
          producer
              .send(new ProducerRecord<>(topic, p, null, ("p" + p + "-" + i).getBytes()))
              .get(30, TimeUnit.SECONDS);
        }
      }
    }
  }

  /**
   * Two members of one group split the topic's partitions disjointly and completely, each reads
   * only its own partitions and together every record once; the first member's rebalance
   * listener was told exactly what it holds (eager: everything revoked then re-assigned;
   * cooperative: only the partitions that moved are revoked).
   */
  @ParameterizedTest
  @ValueSource(strings = {"range", "cooperative-sticky"})
  void twoMembersSplitPartitionsAndListenersSeeTheMoves(String assignor) throws Exception {
    String topic = "classic-split-" + assignor;
    int partitions = 6;
    BROKER.createTopic(topic, partitions);
    produce(topic, partitions, 5);
    String cls =
        assignor.equals("range") ? RangeAssignor.class.getName() : CooperativeStickyAssignor.class.getName();
    Set<TopicPartition> all = Groups.partitions(topic, partitions);
    Groups.RecordingListener l1 = new Groups.RecordingListener();
    Groups.RecordingListener l2 = new Groups.RecordingListener();
    try (KafkaConsumer<byte[], byte[]> c1 = BROKER.consumer(classic("g-" + assignor, cls));
        KafkaConsumer<byte[], byte[]> c2 = BROKER.consumer(classic("g-" + assignor, cls))) {
      c1.subscribe(List.of(topic), l1);
      List<List<ConsumerRecord<byte[], byte[]>>> got = List.of(new ArrayList<>(), new ArrayList<>());
      Groups.pollUntil(List.of(c1), () -> c1.assignment().equals(all), 1, "first member owns all", got);
      assertEquals(all, l1.owned());
      c2.subscribe(List.of(topic), l2);
      Groups.pollUntil(
          List.of(c1, c2), () -> Groups.splitsExactly(List.of(c1, c2), all), 5, "split between two", got);
      assertEquals(c1.assignment(), l1.owned(), "listener calls add up to c1's assignment");
      assertEquals(c2.assignment(), l2.owned(), "listener calls add up to c2's assignment");
      assertEquals(partitions / 2, c1.assignment().size());
      if (assignor.equals("range")) {
        assertEquals(all, l1.everRevoked(), "eager protocol revokes everything");
      } else {
        assertEquals(c2.assignment(), l1.everRevoked(), "cooperative revokes only what moved");
      }
      // Every record once; c2 read only its partitions (c1 may have read any before the split).
      Groups.pollUntil(
          List.of(c1, c2),
          () -> got.get(0).size() + got.get(1).size() >= partitions * 5,
          1,
          "all records read",
          got);
      Set<String> values = new HashSet<>();
      got.forEach(list -> list.forEach(r -> values.add(new String(r.value()))));
      assertEquals(partitions * 5, values.size());
      for (ConsumerRecord<byte[], byte[]> r : got.get(1)) {
        assertTrue(c2.assignment().contains(new TopicPartition(topic, r.partition())));
      }
    }
  }

  /** commitSync and commitAsync store offsets that committed() reads back and a new member resumes from. */
  @Test
  void commitSyncAndAsyncAreReadBackAndResumedFrom() throws Exception {
    String topic = "classic-commit";
    BROKER.createTopic(topic, 2);
    produce(topic, 2, 10);
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    String group = "g-commit";
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(classic(group, RangeAssignor.class.getName()))) {
      c.subscribe(List.of(topic));
      Groups.pollUntil(List.of(c), () -> c.assignment().size() == 2, 1, "assignment", null);
      c.commitSync(Map.of(p0, new OffsetAndMetadata(4, "sync-meta")));
      CompletableFuture<Exception> done = new CompletableFuture<>();
      c.commitAsync(Map.of(p1, new OffsetAndMetadata(7, "async-meta")), (offsets, e) -> done.complete(e));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!done.isDone() && System.nanoTime() < deadline) {
        c.poll(Duration.ofMillis(100)); // commitAsync callbacks run inside poll
      }
      assertTrue(done.isDone(), "commitAsync callback ran");
      assertNull(done.get(), "commitAsync succeeded");
      Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(p0, p1));
      assertEquals(4, committed.get(p0).offset());
      assertEquals("sync-meta", committed.get(p0).metadata());
      assertEquals(7, committed.get(p1).offset());
      assertEquals("async-meta", committed.get(p1).metadata());
    }
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(classic(group, RangeAssignor.class.getName()))) {
      c.subscribe(List.of(topic));
      List<ConsumerRecord<byte[], byte[]>> got = Records.poll(c, (10 - 4) + (10 - 7));
      long fromP0 = got.stream().filter(r -> r.partition() == 0).mapToLong(ConsumerRecord::offset).min().orElse(-1);
      long fromP1 = got.stream().filter(r -> r.partition() == 1).mapToLong(ConsumerRecord::offset).min().orElse(-1);
      assertEquals(4, fromP0, "resumed p0 at its committed offset");
      assertEquals(7, fromP1, "resumed p1 at its committed offset");
    }
  }

  /** seek, seekToBeginning, seekToEnd, offsetsForTimes and pause/resume on an assigned consumer. */
  @Test
  void seekOffsetsForTimesPauseResume() throws Exception {
    String topic = "classic-seek";
    BROKER.createTopic(topic, 2);
    long base = System.currentTimeMillis() - 60_000;
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      for (int i = 0; i < 10; i++) {
        for (int p = 0; p < 2; p++) {
          producer
              .send(new ProducerRecord<>(topic, p, base + i * 1000L, null, ("v" + i).getBytes()))
              .get(30, TimeUnit.SECONDS);
        }
      }
    }
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(Map.of())) {
      c.assign(List.of(p0, p1));
      c.seekToEnd(List.of(p0, p1));
      assertEquals(10, c.position(p0));
      assertEquals(10, c.position(p1));
      c.seekToBeginning(List.of(p0));
      assertEquals(0, c.position(p0));
      c.seek(p1, 6);
      List<ConsumerRecord<byte[], byte[]>> got = Records.poll(c, 10 + 4);
      assertEquals(4, got.stream().filter(r -> r.partition() == 1).count());
      assertEquals(6, got.stream().filter(r -> r.partition() == 1).findFirst().orElseThrow().offset());

      // Exact timestamp, a timestamp between records, and one after the last record.
      Map<TopicPartition, OffsetAndTimestamp> at =
          c.offsetsForTimes(Map.of(p0, base + 3000L, p1, base + 4500L));
      assertEquals(3, at.get(p0).offset());
      assertEquals(base + 3000L, at.get(p0).timestamp());
      assertEquals(5, at.get(p1).offset());
      assertEquals(base + 5000L, at.get(p1).timestamp());
      assertNull(c.offsetsForTimes(Map.of(p0, base + 60_000L)).get(p0));
      assertEquals(Map.of(p0, 0L), c.beginningOffsets(List.of(p0)));
      assertEquals(Map.of(p0, 10L), c.endOffsets(List.of(p0)));

      // Paused partitions return nothing until resumed.
      c.seek(p0, 2);
      c.seek(p1, 2);
      c.pause(List.of(p0));
      assertEquals(Set.of(p0), c.paused());
      List<ConsumerRecord<byte[], byte[]>> unpaused = Records.poll(c, 8);
      assertTrue(unpaused.stream().allMatch(r -> r.partition() == 1), "nothing from paused p0");
      assertTrue(c.poll(Duration.ofMillis(500)).isEmpty());
      assertEquals(2, c.position(p0));
      c.resume(List.of(p0));
      List<ConsumerRecord<byte[], byte[]>> resumed = Records.poll(c, 8);
      assertEquals(2, resumed.get(0).offset());
      assertTrue(resumed.stream().allMatch(r -> r.partition() == 0));
    }
  }

  /**
   * Static membership: a member that restarts with the same group.instance.id within the
   * session timeout gets the same partitions back, and the other member sees no rebalance.
   */
  @Test
  void staticMemberRestartKeepsItsPartitionsWithoutRebalancingOthers() throws Exception {
    String topic = "classic-static";
    int partitions = 4;
    BROKER.createTopic(topic, partitions);
    Set<TopicPartition> all = Groups.partitions(topic, partitions);
    String group = "g-static";
    Map<String, Object> a = classic(group, RangeAssignor.class.getName());
    a.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "member-a");
    a.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
    Map<String, Object> b = new HashMap<>(a);
    b.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "member-b");
    Groups.RecordingListener lb = new Groups.RecordingListener();
    try (KafkaConsumer<byte[], byte[]> cb = BROKER.consumer(b)) {
      Set<TopicPartition> aBefore;
      KafkaConsumer<byte[], byte[]> ca = BROKER.consumer(a);
      try {
        ca.subscribe(List.of(topic));
        cb.subscribe(List.of(topic), lb);
        Groups.pollUntil(List.of(ca, cb), () -> Groups.splitsExactly(List.of(ca, cb), all), 5, "split", null);
        aBefore = Set.copyOf(ca.assignment());
      } finally {
        ca.close(); // a static member's close leaves no LeaveGroup: the group keeps its place
      }
      int callsBefore = lb.nonEmptyCalls();
      Set<TopicPartition> bBefore = Set.copyOf(cb.assignment());
      try (KafkaConsumer<byte[], byte[]> ca2 = BROKER.consumer(a)) {
        ca2.subscribe(List.of(topic));
        Groups.pollUntil(List.of(ca2, cb), () -> ca2.assignment().equals(aBefore), 10, "a's return", null);
        assertEquals(bBefore, cb.assignment());
        assertEquals(callsBefore, lb.nonEmptyCalls(), "b saw no rebalance: " + lb.revoked + " " + lb.assigned);
      }
    }
  }
}
