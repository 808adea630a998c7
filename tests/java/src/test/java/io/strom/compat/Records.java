package io.strom.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/** Reading helpers shared by the test classes. */
final class Records {
  static final Duration READ_TIMEOUT = Duration.ofSeconds(30);

  private Records() {}

  /**
   * Reads {@code expected} records from all {@code partitions} of {@code topic} with an assigned
   * (group-less) consumer from offset 0, sorted by partition then offset. Fails after {@link
   * #READ_TIMEOUT} with what it got.
   */
  static List<ConsumerRecord<byte[], byte[]>> readAll(
      StromBroker broker, String topic, int partitions, int expected) {
    return readAll(broker, topic, partitions, expected, Map.of());
  }

  static List<ConsumerRecord<byte[], byte[]>> readAll(
      StromBroker broker,
      String topic,
      int partitions,
      int expected,
      Map<String, Object> overrides) {
    List<TopicPartition> tps =
        IntStream.range(0, partitions)
            .mapToObj(p -> new TopicPartition(topic, p))
            .collect(Collectors.toList());
    try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer(overrides)) {
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      return poll(consumer, expected);
    }
  }

  /** Polls until {@code expected} records arrived or {@link #READ_TIMEOUT} passed. */
  static List<ConsumerRecord<byte[], byte[]>> poll(
      KafkaConsumer<byte[], byte[]> consumer, int expected) {
    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
    long deadline = System.nanoTime() + READ_TIMEOUT.toNanos();
    while (got.size() < expected && System.nanoTime() < deadline) {
      consumer.poll(Duration.ofMillis(200)).forEach(got::add);
    }
    if (got.size() != expected) {
      throw new AssertionError(
          "expected " + expected + " records, got " + got.size() + " within " + READ_TIMEOUT);
    }
    got.sort(
        Comparator.<ConsumerRecord<byte[], byte[]>>comparingInt(ConsumerRecord::partition)
            .thenComparingLong(ConsumerRecord::offset));
    return got;
  }
}
