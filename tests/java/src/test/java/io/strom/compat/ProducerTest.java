package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java producer with its defaults (idempotence on, acks=all) against Strom. */
class ProducerTest {
  @RegisterExtension static final StromBroker BROKER = new StromBroker();

  private static final int PARTITIONS = 3;
  private static final int RECORDS = 60;

  /**
   * Every codec: keyed records with ordered, repeated-key headers (and a null value, a binary
   * value) come back byte for byte, in order per partition, on the partition Java's murmur2
   * default partitioner picks.
   */
  @ParameterizedTest
  @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
  void everyCodecRoundTripsKeysValuesHeadersAndPlacement(String codec) throws Exception {
    String topic = "codec-" + codec;
    BROKER.createTopic(topic, PARTITIONS);
    List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer =
        BROKER.producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec))) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      for (int i = 0; i < RECORDS; i++) {
        ProducerRecord<byte[], byte[]> record =
            new ProducerRecord<>(topic, null, key(i), value(i), headers(i));
        sent.add(record);
        acks.add(producer.send(record));
      }
      for (Future<RecordMetadata> ack : acks) {
        ack.get(30, TimeUnit.SECONDS);
      }
    }
    List<ConsumerRecord<byte[], byte[]>> got = Records.readAll(BROKER, topic, PARTITIONS, RECORDS);
    // Per partition, the order sent is the order read.
    for (int p = 0; p < PARTITIONS; p++) {
      List<ProducerRecord<byte[], byte[]>> want = new ArrayList<>();
      for (ProducerRecord<byte[], byte[]> r : sent) {
        if (expectedPartition(r.key()) == p) {
          want.add(r);
        }
      }
      final int partition = p;
      List<ConsumerRecord<byte[], byte[]>> have =
          got.stream().filter(r -> r.partition() == partition).toList();
      assertEquals(want.size(), have.size(), "records on partition " + p);
      for (int i = 0; i < want.size(); i++) {
        ConsumerRecord<byte[], byte[]> r = have.get(i);
        assertEquals(i, r.offset(), "offsets contiguous on partition " + p);
        assertArrayEquals(want.get(i).key(), r.key());
        assertArrayEquals(want.get(i).value(), r.value());
        assertHeadersEqual(want.get(i).headers().toArray(), r.headers().toArray());
      }
    }
  }

  /** A record of nearly max.message.bytes (incompressible) is accepted and read back whole. */
  @Test
  void largeRecordNearMaxMessageBytesRoundTrips() throws Exception {
    String topic = "large-record";
    int maxMessageBytes = 512 * 1024;
    BROKER.createTopic(
        topic, 1, Map.of("max.message.bytes", Integer.toString(maxMessageBytes)));
    // A batch of one record: 61 bytes of batch header plus about 20 of record framing.
    byte[] value = new byte[maxMessageBytes - 200];
    new Random(42).nextBytes(value);
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      RecordMetadata md =
          producer.send(new ProducerRecord<>(topic, value)).get(30, TimeUnit.SECONDS);
      assertEquals(0, md.offset());
    }
    List<ConsumerRecord<byte[], byte[]>> got =
        Records.readAll(
            BROKER, topic, 1, 1, Map.of("max.partition.fetch.bytes", Integer.toString(64 * 1024)));
    assertArrayEquals(value, got.get(0).value());
  }

  /**
   * A record larger than the topic's max.message.bytes (but within the producer's own limit) is
   * refused by the broker, and the send future fails with RecordTooLargeException; the records
   * around it land.
   */
  @Test
  void tooLargeRecordFailsTheSendWithRecordTooLarge() throws Exception {
    String topic = "too-large";
    BROKER.createTopic(topic, 1, Map.of("max.message.bytes", Integer.toString(64 * 1024)));
    byte[] big = new byte[200 * 1024];
    new Random(7).nextBytes(big);
    try (KafkaProducer<byte[], byte[]> producer =
        BROKER.producer(Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Integer.toString(1 << 20)))) {
      RecordMetadata before =
          producer.send(new ProducerRecord<>(topic, bytes("before"))).get(30, TimeUnit.SECONDS);
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> producer.send(new ProducerRecord<>(topic, big)).get(30, TimeUnit.SECONDS));
      assertInstanceOf(RecordTooLargeException.class, e.getCause(), e.toString());
      RecordMetadata after =
          producer.send(new ProducerRecord<>(topic, bytes("after"))).get(30, TimeUnit.SECONDS);
      assertEquals(0, before.offset());
      assertEquals(1, after.offset(), "the refused record took no offset");
    }
    List<ConsumerRecord<byte[], byte[]>> got = Records.readAll(BROKER, topic, 1, 2);
    assertArrayEquals(bytes("before"), got.get(0).value());
    assertArrayEquals(bytes("after"), got.get(1).value());
  }

  /**
   * Keyed records are read back from the partition Kafka's default partitioner (murmur2) gives
   * their key, so keyed order and co-partitioning hold as on Kafka.
   */
  @Test
  void keyedRecordsLandOnTheMurmur2Partition() throws Exception {
    String topic = "murmur2";
    int partitions = 7;
    BROKER.createTopic(topic, partitions);
    String[] keys = {"a", "b", "order-1", "order-2", "user:42", "", "\u00e9t\u00e9"};
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      for (String k : keys) {
        RecordMetadata md =
            producer.send(new ProducerRecord<>(topic, bytes(k), bytes("v-" + k))).get(30, TimeUnit.SECONDS);
        assertEquals(expectedPartition(bytes(k), partitions), md.partition(), "key " + k);
      }
    }
    List<ConsumerRecord<byte[], byte[]>> got =
        Records.readAll(BROKER, topic, partitions, keys.length);
    for (ConsumerRecord<byte[], byte[]> r : got) {
      assertEquals(expectedPartition(r.key(), partitions), r.partition());
      assertArrayEquals(bytes("v-" + new String(r.key(), StandardCharsets.UTF_8)), r.value());
    }
  }

  // ------------------------------------------------------------------ helpers

  static int expectedPartition(byte[] key) {
    return expectedPartition(key, PARTITIONS);
  }

  static int expectedPartition(byte[] key, int partitions) {
    return Utils.toPositive(Utils.murmur2(key)) % partitions;
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] key(int i) {
    return bytes("key-" + (i % 17));
  }

  private static byte[] value(int i) {
    if (i % 10 == 3) {
      return null;
    }
    if (i % 10 == 5) {
      byte[] b = new byte[256];
      for (int j = 0; j < b.length; j++) {
        b[j] = (byte) j;
      }
      return b;
    }
    return bytes("value-" + i + "-" + "z".repeat(i * 7));
  }

  private static RecordHeaders headers(int i) {
    RecordHeaders h = new RecordHeaders();
    if (i % 4 == 0) {
      return h;
    }
    h.add(new RecordHeader("trace", bytes("t" + i)));
    h.add(new RecordHeader("dup", bytes("first")));
    h.add(new RecordHeader("empty", new byte[0]));
    h.add(new RecordHeader("dup", bytes("second")));
    h.add(new RecordHeader("null-value", (byte[]) null));
    return h;
  }

  private static void assertHeadersEqual(Header[] want, Header[] have) {
    assertEquals(want.length, have.length, "header count");
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i].key(), have[i].key(), "header " + i + " key");
      if (want[i].value() == null) {
        assertNull(have[i].value(), "header " + i + " value");
      } else {
        assertArrayEquals(want[i].value(), have[i].value(), "header " + i + " value");
      }
    }
  }
}
