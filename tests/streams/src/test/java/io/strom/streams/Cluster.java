package io.strom.streams;

import io.strom.compat.StromBroker;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * A single-node cluster that clients talk to, whichever broker runs it: a Strom process
 * ({@link #strom}) or Apache Kafka ({@link KafkaPeer}). What the MirrorMaker 2 checks need.
 */
interface Cluster {
  String bootstrap();

  Admin admin();

  /** A byte[] producer, plus {@code overrides}. */
  KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides);

  /** A byte[] consumer reading from the earliest offset, plus {@code overrides}. */
  KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides);

  /** Creates a topic (replication factor 1) and waits for the answer. */
  void createTopic(String name, int partitions, Map<String, String> configs);

  /** The end of the broker's log, for failure messages. */
  String logTail();

  static Cluster strom(StromBroker broker) {
    return new Cluster() {
      @Override
      public String bootstrap() {
        return broker.bootstrap();
      }

      @Override
      public Admin admin() {
        return broker.admin();
      }

      @Override
      public KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides) {
        return broker.producer(overrides);
      }

      @Override
      public KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides) {
        return broker.consumer(overrides);
      }

      @Override
      public void createTopic(String name, int partitions, Map<String, String> configs) {
        broker.createTopic(name, partitions, configs);
      }

      @Override
      public String logTail() {
        return broker.logTail();
      }
    };
  }
}
