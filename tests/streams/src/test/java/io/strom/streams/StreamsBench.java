package io.strom.streams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;

/**
 * Kafka Streams word-count throughput against one broker; not a test (scripts/bench_streams.py
 * runs it against Strom and Apache Kafka). Loads LINES lines of 8 words (1,000 distinct) into a
 * 4-partition topic, then runs the word count (exactly_once_v2, Streams' default cache and
 * commit interval, one thread) and times it from RUNNING until the output, read read_committed,
 * holds every word's final count. Prints one line: {@code lines/s=N seconds=S}.
 *
 * <pre>StreamsBench BOOTSTRAP LINES TAG STATE_DIR</pre>
 */
public final class StreamsBench {
  private StreamsBench() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    int lines = Integer.parseInt(args[1]);
    String tag = args[2];
    String in = "bench-in-" + tag;
    String out = "bench-out-" + tag;
    Properties common = new Properties();
    common.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(common)) {
      admin.createTopics(List.of(new NewTopic(in, 4, (short) 1), new NewTopic(out, 4, (short) 1)))
          .all().get(60, TimeUnit.SECONDS);
    }
    Map<String, Long> expected = new HashMap<>();
    Random rnd = new Random(42);
    Properties pp = new Properties();
    pp.putAll(common);
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    pp.put(ProducerConfig.LINGER_MS_CONFIG, "10");
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
      for (int i = 0; i < lines; i++) {
        StringBuilder line = new StringBuilder();
        for (int w = 0; w < 8; w++) {
          String word = "w" + rnd.nextInt(1000);
          expected.merge(word, 1L, Long::sum);
          line.append(word).append(' ');
        }
        p.send(new ProducerRecord<>(in, null, line.toString().getBytes(StandardCharsets.UTF_8)));
      }
      p.flush();
    }

    Properties sp = new Properties();
    sp.putAll(common);
    sp.put(StreamsConfig.APPLICATION_ID_CONFIG, "bench-" + tag);
    sp.put(StreamsConfig.STATE_DIR_CONFIG, args[3]);
    sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    sp.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    sp.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    KafkaStreams streams = new KafkaStreams(StreamsApps.wordCount(in, out, 0), sp);
    CountDownLatch running = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) {
        running.countDown();
      }
    });
    Properties cp = new Properties();
    cp.putAll(common);
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
      List<TopicPartition> parts = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        parts.add(new TopicPartition(out, i));
      }
      c.assign(parts);
      c.seekToBeginning(parts);
      streams.start();
      if (!running.await(120, TimeUnit.SECONDS)) {
        throw new IllegalStateException("streams not RUNNING in 120 s");
      }
      long t0 = System.nanoTime();
      Map<String, Long> got = new HashMap<>();
      int pending = expected.size();
      long deadline = t0 + Duration.ofMinutes(10).toNanos();
      while (pending > 0 && System.nanoTime() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
          String word = new String(r.key(), StandardCharsets.UTF_8);
          long count = ByteBuffer.wrap(r.value()).getLong();
          Long before = got.put(word, count);
          long want = expected.get(word);
          if (count == want && (before == null || before != want)) {
            pending--;
          }
        }
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      streams.close(Duration.ofSeconds(30));
      if (pending > 0) {
        throw new IllegalStateException(pending + " words short of their final count");
      }
      System.out.printf("lines/s=%.0f seconds=%.2f%n", lines / seconds, seconds);
    }
  }
}
