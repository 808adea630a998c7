package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The smallest round trip: the Java producer's records come back to the Java consumer intact. */
class ProduceConsumeTest {
  @RegisterExtension static final StromBroker BROKER = new StromBroker();

  @Test
  void producedRecordsComeBackInOrder() throws Exception {
    String topic = "java-roundtrip";
    BROKER.createTopic(topic, 1);
    int n = 100;
    List<RecordMetadata> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      for (int i = 0; i < n; i++) {
        sent.add(
            producer
                .send(new ProducerRecord<>(topic, key(i), value(i)))
                .get(30, TimeUnit.SECONDS));
      }
    }
    for (int i = 0; i < n; i++) {
      assertEquals(i, sent.get(i).offset(), "offsets are contiguous from 0");
    }
    List<ConsumerRecord<byte[], byte[]>> got = Records.readAll(BROKER, topic, 1, n);
    for (int i = 0; i < n; i++) {
      ConsumerRecord<byte[], byte[]> r = got.get(i);
      assertEquals(i, r.offset());
      assertArrayEquals(key(i), r.key());
      assertArrayEquals(value(i), r.value());
    }
  }

  private static byte[] key(int i) {
    return ("k" + i).getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] value(int i) {
    return ("value-" + i + "-" + "x".repeat(i)).getBytes(StandardCharsets.UTF_8);
  }
}
