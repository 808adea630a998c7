package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.strom.compat.StromBroker;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kafka Streams (exactly_once_v2) windowed counts, tumbling and hopping with grace, and a
 * stream-table join, on one Strom broker; inputs with explicit timestamps and known answers.
 */
class WindowsJoinTest {
  @RegisterExtension
  static final StromBroker BROKER = new StromBroker().set("group.initial.rebalance.delay.ms", "200");

  /** A whole multiple of 10 s, so window starts are BASE + k * 5 s (k may be negative). */
  private static final long BASE = 1_700_000_000_000L;

  @TempDir Path tmp;

  private static long at(int seconds) {
    return BASE + seconds * 1000L;
  }

  private static Map<String, Long> lastCountPerWindow(List<ConsumerRecord<byte[], byte[]>> records) {
    Map<String, Long> out = new TreeMap<>();
    for (ConsumerRecord<byte[], byte[]> r : records) {
      out.put(Topics.str(r.key()), ByteBuffer.wrap(r.value()).getLong());
    }
    return out;
  }

  private static Map<String, Long> windows(Object... keyStartCount) {
    Map<String, Long> out = new TreeMap<>();
    for (int i = 0; i < keyStartCount.length; i += 3) {
      out.put(keyStartCount[i] + "@" + at((Integer) keyStartCount[i + 1]), ((Integer) keyStartCount[i + 2]).longValue());
    }
    return out;
  }

  @Test
  void windowedCountsAndStreamTableJoin() throws Exception {
    for (String t : List.of("win-in", "win-tumbling-out", "win-hopping-out", "join-users", "join-clicks", "join-out")) {
      BROKER.createTopic(t, 1);
    }
    // Events: (key, second). a@8 comes after stream time 12 but within the 5 s grace of its
    // windows; a@9 comes at stream time 25, past the grace of every window holding it: dropped.
    String[] keys = {"a", "a", "b", "a", "a", "a", "a", "b"};
    int[] secs = {1, 3, 4, 12, 8, 25, 9, 26};
    List<String[]> events = new ArrayList<>();
    List<Long> eventTimes = new ArrayList<>();
    for (int i = 0; i < keys.length; i++) {
      events.add(new String[] {keys[i], "e" + i});
      eventTimes.add(at(secs[i]));
    }
    Topics.produce(BROKER, "win-in", events, eventTimes);

    // The users table, then clicks; the timestamps order them (u3 has no user: no join output).
    Topics.produce(
        BROKER,
        "join-users",
        List.of(new String[] {"u1", "eu"}, new String[] {"u2", "us"}, new String[] {"u1", "asia"}),
        List.of(at(0), at(0), at(4)));
    Topics.produce(
        BROKER,
        "join-clicks",
        List.of(
            new String[] {"u1", "home"},
            new String[] {"u2", "cart"},
            new String[] {"u3", "help"},
            new String[] {"u1", "checkout"}),
        List.of(at(1), at(2), at(3), at(5)));

    Map<String, Long> tumbling = windows("a", 0, 3, "b", 0, 1, "a", 10, 1, "a", 20, 1, "b", 20, 1);
    Map<String, Long> hopping =
        windows("a", -5, 2, "a", 0, 3, "a", 5, 2, "a", 10, 1, "a", 20, 1, "a", 25, 1, "b", -5, 1, "b", 0, 1, "b", 20, 1, "b", 25, 1);
    List<String> joined = List.of("u1=home@eu", "u2=cart@us", "u1=checkout@asia");

    Path state = Files.createDirectories(tmp.resolve("state"));
    try (ChildJvm app =
        ChildJvm.start(
            "windows-join",
            StreamsApps.class,
            List.of("windows-join", BROKER.bootstrap(), "wj-app", state.toString()),
            tmp.resolve("windows-join.log"))) {
      app.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(60));
      Duration wait = Duration.ofSeconds(60);
      Map<String, Long> gotTumbling =
          lastCountPerWindow(
              Topics.readCommitted(BROKER, "win-tumbling-out", r -> lastCountPerWindow(r).equals(tumbling), wait));
      assertEquals(tumbling, gotTumbling, "tumbling window counts\n" + app.logTail());
      Map<String, Long> gotHopping =
          lastCountPerWindow(
              Topics.readCommitted(BROKER, "win-hopping-out", r -> lastCountPerWindow(r).equals(hopping), wait));
      assertEquals(hopping, gotHopping, "hopping window counts");
      List<String> gotJoined = new ArrayList<>();
      Topics.readCommitted(BROKER, "join-out", r -> r.size() >= joined.size(), wait)
          .forEach(r -> gotJoined.add(Topics.str(r.key()) + "=" + Topics.str(r.value())));
      assertEquals(joined, gotJoined, "stream-table join output");
    }
  }
}
