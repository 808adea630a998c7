package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A broker with auto.create.topics.enable=false: sending to a missing topic fails the send. */
class ProducerNoAutoCreateTest {
  @RegisterExtension
  static final StromBroker BROKER = new StromBroker().set("auto.create.topics.enable", "false");

  /**
   * Kafka's producer keeps asking for metadata of a topic the broker answers
   * UNKNOWN_TOPIC_OR_PARTITION for, and fails the send after max.block.ms with a
   * TimeoutException saying the topic is not present in metadata; the topic is not created.
   */
  @Test
  void sendToUnknownTopicFailsAndCreatesNothing() throws Exception {
    String topic = "no-such-topic";
    try (KafkaProducer<byte[], byte[]> producer =
        BROKER.producer(Map.of(ProducerConfig.MAX_BLOCK_MS_CONFIG, "3000"))) {
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> producer.send(new ProducerRecord<>(topic, new byte[] {1})).get(30, TimeUnit.SECONDS));
      assertInstanceOf(TimeoutException.class, e.getCause(), e.toString());
      assertTrue(
          e.getCause().getMessage().contains("Topic " + topic + " not present in metadata"),
          e.getCause().getMessage());
    }
    try (Admin admin = BROKER.admin()) {
      Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
      assertEquals(Set.of(), names, "nothing was auto-created");
    }
  }
}
