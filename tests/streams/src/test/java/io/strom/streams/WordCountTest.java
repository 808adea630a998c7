package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strom.compat.StromBroker;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kafka Streams word count with processing.guarantee=exactly_once_v2 on one Strom broker: the
 * output, read read_committed, has for every word the counts 1..n exactly once each; and the same
 * with two instances (separate JVMs) when one is killed with SIGKILL while it processes.
 */
class WordCountTest {
  @RegisterExtension
  static final StromBroker BROKER =
      new StromBroker()
          .set("group.initial.rebalance.delay.ms", "200")
          // A killed instance's open transaction is aborted soon after its timeout (Streams: 10 s).
          .set("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000");

  private static final String[] WORDS = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo"
  };

  @TempDir Path tmp;

  /** Line i of the input; its words are counted into {@code expected}. */
  static List<String[]> lines(int n, Map<String, Long> expected) {
    List<String[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String line =
          WORDS[i % WORDS.length] + " " + WORDS[(i * 7 + 3) % WORDS.length].toUpperCase() + ", "
              + WORDS[(i * i) % WORDS.length] + "!";
      for (String w : line.toLowerCase().split("\\W+")) {
        if (!w.isEmpty()) {
          expected.merge(w, 1L, Long::sum);
        }
      }
      out.add(new String[] {"line-" + i, line});
    }
    return out;
  }

  private static Map<String, List<Long>> countsPerWord(List<ConsumerRecord<byte[], byte[]>> records) {
    Map<String, List<Long>> out = new TreeMap<>();
    for (ConsumerRecord<byte[], byte[]> r : records) {
      out.computeIfAbsent(Topics.str(r.key()), k -> new ArrayList<>()).add(ByteBuffer.wrap(r.value()).getLong());
    }
    return out;
  }

  static Predicate<List<ConsumerRecord<byte[], byte[]>>> reached(Map<String, Long> expected) {
    return records -> {
      Map<String, List<Long>> got = countsPerWord(records);
      for (Map.Entry<String, Long> e : expected.entrySet()) {
        List<Long> counts = got.get(e.getKey());
        if (counts == null || counts.get(counts.size() - 1) < e.getValue()) {
          return false;
        }
      }
      return true;
    };
  }

  /** Every word's counts are exactly 1, 2, ..., its number of occurrences: none lost, none twice. */
  static void assertExact(Map<String, Long> expected, List<ConsumerRecord<byte[], byte[]>> records) {
    Map<String, List<Long>> got = countsPerWord(records);
    assertEquals(expected.keySet(), got.keySet(), "words in the output");
    for (Map.Entry<String, Long> e : expected.entrySet()) {
      List<Long> want = new ArrayList<>();
      for (long i = 1; i <= e.getValue(); i++) {
        want.add(i);
      }
      assertEquals(want, got.get(e.getKey()), "counts of '" + e.getKey() + "' in output order");
    }
  }

  private ChildJvm instance(String name, String appId, String in, String out, long sleepMs) throws Exception {
    Path state = Files.createDirectories(tmp.resolve(name + "-state"));
    return ChildJvm.start(
        name,
        StreamsApps.class,
        List.of("wordcount", BROKER.bootstrap(), appId, state.toString(), in, out, Long.toString(sleepMs)),
        tmp.resolve(name + ".log"));
  }

  /** The active tasks the instance printed when it last reached RUNNING. */
  private static String lastActiveTasks(ChildJvm app) {
    String tasks = "";
    for (String line : app.logText().split("\n")) {
      if (line.startsWith("STREAMS-ACTIVE-TASKS ")) {
        tasks = line.substring("STREAMS-ACTIVE-TASKS ".length()).trim();
      }
    }
    return tasks;
  }

  @Test
  void exactlyOnceWordCountHasTheKnownAnswer() throws Exception {
    BROKER.createTopic("wc-in", 3);
    BROKER.createTopic("wc-out", 1);
    Map<String, Long> expected = new TreeMap<>();
    Topics.produce(BROKER, "wc-in", lines(300, expected), null);

    try (ChildJvm app = instance("wordcount", "wc-app", "wc-in", "wc-out", 0)) {
      app.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(60));
      List<ConsumerRecord<byte[], byte[]>> out =
          Topics.readCommitted(BROKER, "wc-out", reached(expected), Duration.ofSeconds(60));
      assertTrue(reached(expected).test(out), "final counts not reached\n" + app.logTail() + BROKER.logTail());
      assertExact(expected, out);
    }

    // The internal topics Streams created through the admin API: a compacted changelog and a
    // repartition topic with the input's partition count.
    try (Admin admin = BROKER.admin()) {
      Set<String> names = admin.listTopics().names().get(20, TimeUnit.SECONDS);
      String changelog = "wc-app-word-counts-changelog";
      String repartition = "wc-app-word-counts-repartition";
      assertTrue(names.contains(changelog) && names.contains(repartition), "internal topics: " + names);
      ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, changelog);
      Config cfg = admin.describeConfigs(List.of(res)).all().get(20, TimeUnit.SECONDS).get(res);
      assertEquals("compact", cfg.get("cleanup.policy").value());
      assertEquals(
          3, admin.describeTopics(List.of(repartition)).allTopicNames().get(20, TimeUnit.SECONDS)
              .get(repartition).partitions().size());
    }
  }

  @Test
  void twoInstancesOneKilledMidProcessingOutputStillExact() throws Exception {
    BROKER.createTopic("wk-in", 4);
    BROKER.createTopic("wk-out", 1);
    Map<String, Long> expected = new TreeMap<>();
    Topics.produce(BROKER, "wk-in", lines(1500, expected), null);

    try (ChildJvm a = instance("instance-a", "wk-app", "wk-in", "wk-out", 8);
        ChildJvm b = instance("instance-b", "wk-app", "wk-in", "wk-out", 8)) {
      a.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(60));
      b.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(60));
      // Some output is committed, much is not yet processed: kill one instance now.
      long total = expected.values().stream().mapToLong(Long::longValue).sum();
      List<ConsumerRecord<byte[], byte[]>> early =
          Topics.readCommitted(BROKER, "wk-out", r -> r.size() >= 300, Duration.ofSeconds(60), Duration.ZERO);
      assertTrue(early.size() >= 300 && early.size() < total, "progress before the kill: " + early.size());
      String tasksOfA = lastActiveTasks(a);
      assertTrue(!tasksOfA.isEmpty(), "instance A had no active task\n" + a.logTail());
      a.kill();
      System.out.printf(
          "killed instance A (tasks %s; instance B's: %s) after %d of %d output records%n",
          tasksOfA, lastActiveTasks(b), early.size(), total);

      List<ConsumerRecord<byte[], byte[]>> out =
          Topics.readCommitted(BROKER, "wk-out", reached(expected), Duration.ofSeconds(120));
      assertTrue(reached(expected).test(out), "final counts not reached\n" + b.logTail() + BROKER.logTail());
      assertExact(expected, out);
      assertTrue(b.alive(), "the surviving instance is still running");
    }
  }
}
