package io.strom.compat;

import java.time.Duration;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/** Helpers for consumer-group tests: polling several consumers until a condition holds. */
final class Groups {
  static final Duration SETTLE_TIMEOUT = Duration.ofSeconds(45);

  private Groups() {}

  /**
   * Polls every consumer in turn (each poll drives its group membership) until {@code done}
   * holds for {@code stableRounds} rounds in a row, or fails after {@link #SETTLE_TIMEOUT}.
   * Records polled meanwhile are handed to {@code sink} per consumer index (may be null).
   */
  static void pollUntil(
      List<KafkaConsumer<byte[], byte[]>> consumers,
      BooleanSupplier done,
      int stableRounds,
      String what,
      List<List<org.apache.kafka.clients.consumer.ConsumerRecord<byte[], byte[]>>> sink) {
    long deadline = System.nanoTime() + SETTLE_TIMEOUT.toNanos();
    int stable = 0;
    while (System.nanoTime() < deadline) {
      for (int i = 0; i < consumers.size(); i++) {
        var records = consumers.get(i).poll(Duration.ofMillis(100));
        if (sink != null) {
          records.forEach(sink.get(i)::add);
        }
      }
      stable = done.getAsBoolean() ? stable + 1 : 0;
      if (stable >= stableRounds) {
        return;
      }
    }
    StringBuilder state = new StringBuilder();
    for (int i = 0; i < consumers.size(); i++) {
      state.append(" consumer ").append(i).append(": ").append(consumers.get(i).assignment());
    }
    throw new AssertionError(what + " did not happen within " + SETTLE_TIMEOUT + ";" + state);
  }

  /** True when the consumers' assignments are disjoint and together cover {@code all}. */
  static boolean splitsExactly(List<KafkaConsumer<byte[], byte[]>> consumers, Set<TopicPartition> all) {
    Set<TopicPartition> union = new HashSet<>();
    int total = 0;
    for (KafkaConsumer<byte[], byte[]> c : consumers) {
      Set<TopicPartition> a = c.assignment();
      if (a.isEmpty()) {
        return false;
      }
      union.addAll(a);
      total += a.size();
    }
    return total == all.size() && union.equals(all);
  }

  static Set<TopicPartition> partitions(String topic, int n) {
    Set<TopicPartition> s = new HashSet<>();
    for (int p = 0; p < n; p++) {
      s.add(new TopicPartition(topic, p));
    }
    return s;
  }

  /** A rebalance listener that records every call, for assertions on what was revoked/assigned. */
  static final class RecordingListener implements ConsumerRebalanceListener {
    final List<Set<TopicPartition>> assigned = new CopyOnWriteArrayList<>();
    final List<Set<TopicPartition>> revoked = new CopyOnWriteArrayList<>();
    final List<Set<TopicPartition>> lost = new CopyOnWriteArrayList<>();
    private final Set<TopicPartition> owned = new HashSet<>();

    // The consumer calls these from its poll(), on the test's thread.
    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      assigned.add(Set.copyOf(partitions));
      owned.addAll(partitions);
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      revoked.add(Set.copyOf(partitions));
      owned.removeAll(partitions);
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      lost.add(Set.copyOf(partitions));
      owned.removeAll(partitions);
    }

    /** Everything assigned minus everything revoked or lost, replayed in call order. */
    Set<TopicPartition> owned() {
      return Set.copyOf(owned);
    }

    /** Partitions named in any revocation (calls with an empty set count for nothing). */
    Set<TopicPartition> everRevoked() {
      Set<TopicPartition> s = new HashSet<>();
      revoked.forEach(s::addAll);
      return s;
    }

    int nonEmptyCalls() {
      int n = 0;
      for (Set<TopicPartition> s : assigned) {
        n += s.isEmpty() ? 0 : 1;
      }
      for (Set<TopicPartition> s : revoked) {
        n += s.isEmpty() ? 0 : 1;
      }
      return n + lost.size();
    }
  }
}
