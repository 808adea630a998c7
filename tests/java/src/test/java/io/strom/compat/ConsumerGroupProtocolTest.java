package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java consumer with group.protocol=consumer (KIP-848): the broker assigns partitions. */
class ConsumerGroupProtocolTest {
  @RegisterExtension static final StromBroker BROKER = new StromBroker();

  private static Map<String, Object> kip848(String group, String remoteAssignor) {
    Map<String, Object> m = new HashMap<>();
    m.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    m.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
    if (remoteAssignor != null) {
      m.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, remoteAssignor);
    }
    m.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    return m;
  }

  private static void produce(String topic, int partitions, int perPartition) throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      for (int p = 0; p < partitions; p++) {
        for (int i = 0; i < perPartition; i++) {
          producer
              .send(new ProducerRecord<>(topic, p, null, (topic + "/p" + p + "-" + i).getBytes()))
              .get(30, TimeUnit.SECONDS);
        }
      }
    }
  }

  /**
   * With either server-side assignor, two members split the partitions disjointly and
   * completely; the listeners' calls add up to each member's assignment, and the first member
   * gives up only what moved (KIP-848 revokes incrementally); every record is read once.
   */
  @ParameterizedTest
  @ValueSource(strings = {"uniform", "range"})
  void twoMembersSplitPartitionsWithTheRemoteAssignor(String assignor) throws Exception {
    String topic = "kip848-" + assignor;
    int partitions = 6;
    BROKER.createTopic(topic, partitions);
    produce(topic, partitions, 4);
    Set<TopicPartition> all = Groups.partitions(topic, partitions);
    Groups.RecordingListener l1 = new Groups.RecordingListener();
    Groups.RecordingListener l2 = new Groups.RecordingListener();
    String group = "g848-" + assignor;
    try (KafkaConsumer<byte[], byte[]> c1 = BROKER.consumer(kip848(group, assignor));
        KafkaConsumer<byte[], byte[]> c2 = BROKER.consumer(kip848(group, assignor))) {
      List<List<ConsumerRecord<byte[], byte[]>>> got = List.of(new ArrayList<>(), new ArrayList<>());
      c1.subscribe(List.of(topic), l1);
      Groups.pollUntil(List.of(c1), () -> c1.assignment().equals(all), 1, "first member owns all", got);
      c2.subscribe(List.of(topic), l2);
      Groups.pollUntil(
          List.of(c1, c2), () -> Groups.splitsExactly(List.of(c1, c2), all), 5, "split between two", got);
      assertEquals(partitions / 2, c1.assignment().size());
      assertEquals(c1.assignment(), l1.owned());
      assertEquals(c2.assignment(), l2.owned());
      assertEquals(c2.assignment(), l1.everRevoked(), "only what moved was revoked");
      Groups.pollUntil(
          List.of(c1, c2),
          () -> got.get(0).size() + got.get(1).size() >= partitions * 4,
          1,
          "all records read",
          got);
      Set<String> values = new HashSet<>();
      got.forEach(list -> list.forEach(r -> values.add(new String(r.value()))));
      assertEquals(partitions * 4, values.size());
      if (assignor.equals("range")) {
        // The range assignor gives each member a contiguous block of partition numbers.
        Set<Integer> first = new HashSet<>();
        c1.assignment().forEach(tp -> first.add(tp.partition()));
        assertTrue(first.equals(Set.of(0, 1, 2)) || first.equals(Set.of(3, 4, 5)), first.toString());
      }
    }
  }

  /**
   * subscribe(SubscriptionPattern) (KIP-848's broker-side RE2J regex): the member gets every
   * partition of the matching topics only, including a matching topic created afterwards.
   */
  @Test
  void regexSubscriptionFollowsMatchingTopics() throws Exception {
    BROKER.createTopic("rx-orders", 2);
    BROKER.createTopic("rx-payments", 1);
    BROKER.createTopic("other-rx", 1);
    produce("rx-orders", 2, 3);
    produce("rx-payments", 1, 3);
    produce("other-rx", 1, 3);
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(kip848("g848-regex", null))) {
      c.subscribe(new SubscriptionPattern("rx-.*"));
      Set<TopicPartition> want = new HashSet<>(Groups.partitions("rx-orders", 2));
      want.addAll(Groups.partitions("rx-payments", 1));
      List<List<ConsumerRecord<byte[], byte[]>>> got = List.of(new ArrayList<>());
      Groups.pollUntil(
          List.of(c), () -> c.assignment().equals(want) && got.get(0).size() >= 9, 1, "regex assignment", got);
      assertTrue(got.get(0).stream().noneMatch(r -> r.topic().equals("other-rx")));
      assertEquals(9, got.get(0).size());

      BROKER.createTopic("rx-refunds", 1);
      produce("rx-refunds", 1, 2);
      want.add(new TopicPartition("rx-refunds", 0));
      Groups.pollUntil(
          List.of(c), () -> c.assignment().equals(want) && got.get(0).size() >= 11, 1, "new topic joins", got);
      assertEquals(
          2, got.get(0).stream().filter(r -> r.topic().equals("rx-refunds")).count());
    }
  }
}
