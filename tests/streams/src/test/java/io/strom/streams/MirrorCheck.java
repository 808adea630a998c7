package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;

/**
 * The MirrorMaker 2 check shared by {@link MirrorMakerTest} (Strom to Strom) and
 * {@link MirrorMakerKafkaTest} (Strom to Apache Kafka and back): MirrorMaker 2 in dedicated mode,
 * its own JVM, replicates one topic from {@code source} to {@code target}, with its partitions
 * and configs and its records partition by partition in order, and a consumer group's committed
 * offsets, translated through checkpoints, so a consumer that moves to the target resumes where
 * it left off and skips nothing.
 */
final class MirrorCheck {
  private final Cluster source;
  private final String sourceAlias;
  private final Cluster target;
  private final String targetAlias;
  private final Path tmp;

  /** {@code sourceAlias}, {@code targetAlias}: MirrorMaker's cluster names (the mirror is "sourceAlias.topic"). */
  MirrorCheck(Cluster source, String sourceAlias, Cluster target, String targetAlias, Path tmp) {
    this.source = source;
    this.sourceAlias = sourceAlias;
    this.target = target;
    this.targetAlias = targetAlias;
    this.tmp = tmp;
  }

  private Object await(String what, Duration timeout, java.util.concurrent.Callable<Object> probe, ChildJvm mm)
      throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    Object last = null;
    while (System.nanoTime() < deadline) {
      try {
        last = probe.call();
        if (last != null) {
          return last;
        }
      } catch (Exception e) {
        last = e;
      }
      Thread.sleep(500);
    }
    throw new AssertionError("timed out waiting for " + what + " (last: " + last + ")\n" + mm.logTail() + target.logTail());
  }

  /** Prints a MirrorMaker topic's records (hex) to the test output, for a failure's reader. */
  private static void dump(Cluster broker, String topic) {
    HexFormat hex = HexFormat.of();
    for (ConsumerRecord<byte[], byte[]> r : Topics.readCommitted(broker, topic, rs -> true, Duration.ofSeconds(2))) {
      System.out.println(topic + " " + r.partition() + "@" + r.offset() + " key=" + hex.formatHex(r.key())
          + " value=" + hex.formatHex(r.value()));
    }
  }

  private static Map<TopicPartition, Long> committed(Cluster broker, String group) throws Exception {
    try (Admin admin = broker.admin()) {
      Map<TopicPartition, Long> out = new TreeMap<>((a, b) -> a.toString().compareTo(b.toString()));
      admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS)
          .forEach((tp, om) -> {
            if (om != null) {
              out.put(tp, om.offset());
            }
          });
      return out;
    }
  }

  /**
   * Runs the whole check for {@code topic} (created here on the source with 2 partitions) and
   * {@code group}; both must be new on either cluster.
   */
  void run(String topic, String group) throws Exception {
    int translated0;
    int translated1;
    source.createTopic(topic, 2, Map.of("retention.ms", "123456789", "max.message.bytes", "65536"));
    List<List<String>> sent = List.of(new ArrayList<>(), new ArrayList<>());
    try (KafkaProducer<byte[], byte[]> p = source.producer(Map.of("acks", "all"))) {
      for (int i = 0; i < 200; i++) {
        int part = i % 2;
        String v = "order-" + i;
        sent.get(part).add(v);
        p.send(new ProducerRecord<>(topic, part, Topics.utf8("k" + i), Topics.utf8(v)));
      }
      p.flush();
    }
    Map<String, String> mm = new TreeMap<>();
    mm.put("clusters", sourceAlias + ", " + targetAlias);
    mm.put(sourceAlias + ".bootstrap.servers", source.bootstrap());
    mm.put(targetAlias + ".bootstrap.servers", target.bootstrap());
    mm.put(sourceAlias + "->" + targetAlias + ".enabled", "true");
    mm.put(sourceAlias + "->" + targetAlias + ".topics", topic);
    mm.put(sourceAlias + "->" + targetAlias + ".groups", group);
    mm.put(targetAlias + "->" + sourceAlias + ".enabled", "false");
    mm.put("sync.group.offsets.enabled", "true");
    // One broker per cluster: replication factor 1 for MirrorMaker's own topics and the mirrors.
    for (String k :
        List.of(
            "replication.factor",
            "checkpoints.topic.replication.factor",
            "heartbeats.topic.replication.factor",
            "offset-syncs.topic.replication.factor",
            "offset.storage.replication.factor",
            "status.storage.replication.factor",
            "config.storage.replication.factor")) {
      mm.put(k, "1");
    }
    // Test timing only: short intervals.
    for (String k :
        List.of(
            "sync.group.offsets.interval.seconds",
            "emit.checkpoints.interval.seconds",
            "refresh.topics.interval.seconds",
            "refresh.groups.interval.seconds",
            "sync.topic.configs.interval.seconds",
            "emit.heartbeats.interval.seconds")) {
      mm.put(k, "1");
    }
    // The worker of the source->target flow commits (and so emits its pending offset syncs) each second.
    mm.put(targetAlias + ".offset.flush.interval.ms", "1000");
    mm.put("offset.lag.max", "0");
    StringBuilder text = new StringBuilder();
    mm.forEach((k, v) -> text.append(k).append(" = ").append(v).append('\n'));
    Path props = tmp.resolve("mm2-" + sourceAlias + "-" + targetAlias + ".properties");
    Files.writeString(props, text.toString(), StandardCharsets.UTF_8);

    try (ChildJvm mm2 =
        ChildJvm.start(
            "mirror-maker",
            ConnectWorker.classpath(),
            "org.apache.kafka.connect.mirror.MirrorMaker",
            List.of(props.toString(), "--clusters", targetAlias),
            tmp.resolve("mirror-maker-" + sourceAlias + "-" + targetAlias + ".log"))) {
      String mirror = sourceAlias + "." + topic;
      TopicPartition m0 = new TopicPartition(mirror, 0);
      TopicPartition m1 = new TopicPartition(mirror, 1);

      // Records, partition by partition, in order.
      List<List<String>> got = List.of(new ArrayList<>(), new ArrayList<>());
      await("the mirror topic on the target", Duration.ofSeconds(90), () -> {
        try (Admin admin = target.admin()) {
          return admin.listTopics().names().get(10, TimeUnit.SECONDS).contains(mirror) ? Boolean.TRUE : null;
        }
      }, mm2);
      for (ConsumerRecord<byte[], byte[]> r : Topics.readCommitted(target, mirror, rs -> rs.size() >= 200, Duration.ofSeconds(60))) {
        got.get(r.partition()).add(Topics.str(r.value()));
      }
      assertEquals(sent, got, "records of " + mirror + " per partition\n" + mm2.logTail());

      // Topic configs.
      Object cfg = await("retention.ms on the mirror", Duration.ofSeconds(60), () -> {
        try (Admin admin = target.admin()) {
          ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, mirror);
          Config c = admin.describeConfigs(List.of(res)).all().get(10, TimeUnit.SECONDS).get(res);
          return "123456789".equals(c.get("retention.ms").value()) ? c : null;
        }
      }, mm2);
      assertEquals("65536", ((Config) cfg).get("max.message.bytes").value());

      // While MirrorMaker runs, a group on the source reads both partitions to their end (100
      // records each), then 10 more records per partition arrive, one at a time. (A group
      // committed mid-way through the first burst may find no offset sync low enough to
      // translate from: a burst uses up MirrorMaker's 10 in-flight syncs. That is MirrorMaker.)
      TopicPartition p0 = new TopicPartition(topic, 0);
      TopicPartition p1 = new TopicPartition(topic, 1);
      try (KafkaConsumer<byte[], byte[]> c =
          source.consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false"))) {
        c.assign(List.of(p0, p1));
        c.commitSync(Map.of(p0, new OffsetAndMetadata(100), p1, new OffsetAndMetadata(100)));
      }
      try (KafkaProducer<byte[], byte[]> p = source.producer(Map.of("acks", "all"))) {
        for (int i = 200; i < 220; i++) {
          int part = i % 2;
          String v = "order-" + i;
          sent.get(part).add(v);
          p.send(new ProducerRecord<>(topic, part, Topics.utf8("k" + i), Topics.utf8(v))).get(10, TimeUnit.SECONDS);
          Thread.sleep(50);
        }
      }

      // The group's offsets, translated through the offset syncs, on the target's group.
      // MirrorMaker 2 translates an offset to the sync's own offset when a sync is at it, else
      // to just past the newest sync below it, so a translation is at most the committed offset:
      // a consumer that moves may read a few records again but skips none.
      try {
        await(group + "'s offsets of both partitions on the target", Duration.ofSeconds(90), () -> {
          Map<TopicPartition, Long> c = committed(target, group);
          return c.size() == 2 ? c : null;
        }, mm2);
      } catch (AssertionError e) {
        dump(source, "mm2-offset-syncs." + targetAlias + ".internal");
        dump(target, sourceAlias + ".checkpoints.internal");
        System.out.println(group + " on the target: " + committed(target, group));
        throw e;
      }
      Map<TopicPartition, Long> offsets = committed(target, group);
      System.out.println(group + " on the target: " + offsets + " (on the source: 100 and 100)");
      translated0 = offsets.get(m0).intValue();
      translated1 = offsets.get(m1).intValue();
      assertTrue(translated0 >= 1 && translated0 <= 100, "translated offset of partition 0: " + offsets);
      assertTrue(translated1 >= 1 && translated1 <= 100, "translated offset of partition 1: " + offsets);
    }

    // A consumer of the group, moved to the target, resumes where it left off.
    List<String> resumed = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> c =
        target.consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false"))) {
      c.subscribe(List.of(sourceAlias + "." + topic));
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (resumed.size() < 220 - translated0 - translated1 && System.nanoTime() < deadline) {
        c.poll(Duration.ofMillis(200)).forEach(r -> resumed.add(r.partition() + ":" + Topics.str(r.value())));
      }
      c.poll(Duration.ofMillis(500)).forEach(r -> resumed.add(r.partition() + ":" + Topics.str(r.value())));
    }
    List<String> expected = new ArrayList<>();
    sent.get(0).subList(translated0, 110).forEach(v -> expected.add("0:" + v));
    sent.get(1).subList(translated1, 110).forEach(v -> expected.add("1:" + v));
    resumed.sort(null);
    expected.sort(null);
    assertEquals(expected, resumed, "what the moved consumer reads: partition 0 from " + translated0 + ", partition 1 from " + translated1);
  }
}
