package io.strom.streams;

import io.strom.compat.StromBroker;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/** Producing test input and reading a whole topic back. */
final class Topics {
  private Topics() {}

  static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  static String str(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  /** Sends key/value strings with explicit timestamps (null timestamp: the producer's clock). */
  static void produce(StromBroker broker, String topic, List<String[]> keyValues, List<Long> timestamps) {
    try (KafkaProducer<byte[], byte[]> p = broker.producer(Map.of("acks", "all", "linger.ms", "5"))) {
      for (int i = 0; i < keyValues.size(); i++) {
        String[] kv = keyValues.get(i);
        Long ts = timestamps == null ? null : timestamps.get(i);
        p.send(new ProducerRecord<>(topic, null, ts, utf8(kv[0]), utf8(kv[1])));
      }
      p.flush();
    }
  }

  /**
   * Reads every partition of {@code topic} from the start, read_committed, until {@code done}
   * holds for what was read (then one more second, so records past the expected end would show
   * too) or {@code timeout} passes; returns the records in partition order.
   */
  static List<ConsumerRecord<byte[], byte[]>> readCommitted(
      StromBroker broker,
      String topic,
      Predicate<List<ConsumerRecord<byte[], byte[]>>> done,
      Duration timeout) {
    return readCommitted(broker, topic, done, timeout, Duration.ofSeconds(1));
  }

  /** As above, from any cluster (Strom or Apache Kafka). */
  static List<ConsumerRecord<byte[], byte[]>> readCommitted(
      Cluster broker, String topic, Predicate<List<ConsumerRecord<byte[], byte[]>>> done, Duration timeout) {
    return readCommitted(broker, topic, done, timeout, Duration.ofSeconds(1));
  }

  /** As above, reading on for {@code settle} once {@code done} holds (zero: return at once). */
  static List<ConsumerRecord<byte[], byte[]>> readCommitted(
      StromBroker broker,
      String topic,
      Predicate<List<ConsumerRecord<byte[], byte[]>>> done,
      Duration timeout,
      Duration settle) {
    return readCommitted(Cluster.strom(broker), topic, done, timeout, settle);
  }

  /** As above, from any cluster (Strom or Apache Kafka). */
  static List<ConsumerRecord<byte[], byte[]>> readCommitted(
      Cluster broker,
      String topic,
      Predicate<List<ConsumerRecord<byte[], byte[]>>> done,
      Duration timeout,
      Duration settle) {
    List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> c =
        broker.consumer(Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(20))) {
        parts.add(new TopicPartition(topic, pi.partition()));
      }
      c.assign(parts);
      c.seekToBeginning(parts);
      long deadline = System.nanoTime() + timeout.toNanos();
      long settleUntil = Long.MAX_VALUE;
      while (System.nanoTime() < Math.min(deadline, settleUntil)) {
        c.poll(Duration.ofMillis(200)).forEach(out::add);
        if (settleUntil == Long.MAX_VALUE && done.test(out)) {
          settleUntil = System.nanoTime() + settle.toNanos();
        }
      }
    }
    return out;
  }
}
