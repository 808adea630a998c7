package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strom.compat.StromBroker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.Node;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The word count with exactly_once_v2 on a three-node Strom cluster (internal topics with the
 * cluster's default replication factor, 3): two instances, and while they process, the broker
 * that coordinates the application's group is killed with SIGKILL, then one instance too. The
 * output, read read_committed, is still every word's counts 1..n once each.
 */
class StreamsClusterTest {
  private static final List<StromBroker> NODES = new ArrayList<>();

  @TempDir Path tmp;

  @BeforeAll
  static void startCluster() throws Exception {
    List<Integer> raft = List.of(StromBroker.freePort(), StromBroker.freePort(), StromBroker.freePort());
    String voters = "1@127.0.0.1:" + raft.get(0) + ",2@127.0.0.1:" + raft.get(1) + ",3@127.0.0.1:" + raft.get(2);
    for (int id = 1; id <= 3; id++) {
      NODES.add(
          new StromBroker()
              .set("node.id", Integer.toString(id))
              .set("controller.quorum.voters", voters)
              .set("default.replication.factor", "3")
              .set("min.insync.replicas", "2")
              .set("offsets.topic.replication.factor", "3")
              .set("transaction.state.log.replication.factor", "3")
              .set("group.initial.rebalance.delay.ms", "200")
              .set("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000"));
    }
    // The quorum needs two voters up: start the three side by side.
    List<Thread> starting = new ArrayList<>();
    List<Throwable> failures = new ArrayList<>();
    for (StromBroker node : NODES) {
      Thread t =
          new Thread(
              () -> {
                try {
                  node.start();
                } catch (RuntimeException e) {
                  synchronized (failures) {
                    failures.add(e);
                  }
                }
              });
      t.start();
      starting.add(t);
    }
    for (Thread t : starting) {
      t.join();
    }
    if (!failures.isEmpty()) {
      throw new IllegalStateException("cluster start", failures.get(0));
    }
    try (Admin admin = NODES.get(0).admin()) {
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (admin.describeCluster().nodes().get(20, TimeUnit.SECONDS).size() < 3) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("three brokers did not register");
        }
        Thread.sleep(200);
      }
    }
  }

  @AfterAll
  static void stopCluster() throws Exception {
    Path keep = Files.createDirectories(Path.of("target", "child-logs"));
    for (int i = 0; i < NODES.size(); i++) {
      StromBroker node = NODES.get(i);
      node.stop();
      // The nodes' logs outlive their temp dirs, for reading after a failure.
      try (var logs = Files.list(node.dataDir().getParent())) {
        for (Path log : (Iterable<Path>) logs.filter(p -> p.toString().endsWith(".log"))::iterator) {
          Files.copy(log, keep.resolve("cluster-node" + (i + 1) + "-" + log.getFileName()),
              java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
      node.close();
    }
  }

  private static String bootstrapAll() {
    List<String> all = new ArrayList<>();
    NODES.forEach(n -> all.add(n.bootstrap()));
    return String.join(",", all);
  }

  @Test
  void brokerAndInstanceKilledOutputStillExact() throws Exception {
    try (Admin admin = NODES.get(0).admin()) {
      admin
          .createTopics(List.of(new NewTopic("cw-in", 4, (short) 3), new NewTopic("cw-out", 1, (short) 3)))
          .all()
          .get(30, TimeUnit.SECONDS);
    }
    Map<String, Long> expected = new TreeMap<>();
    Topics.produce(NODES.get(0), "cw-in", WordCountTest.lines(1500, expected), null);

    Path stateA = Files.createDirectories(tmp.resolve("a-state"));
    Path stateB = Files.createDirectories(tmp.resolve("b-state"));
    try (ChildJvm a =
            ChildJvm.start("instance-a", StreamsApps.class,
                List.of("wordcount", bootstrapAll(), "cw-app", stateA.toString(), "cw-in", "cw-out", "8"),
                tmp.resolve("instance-a.log"));
        ChildJvm b =
            ChildJvm.start("instance-b", StreamsApps.class,
                List.of("wordcount", bootstrapAll(), "cw-app", stateB.toString(), "cw-in", "cw-out", "8"),
                tmp.resolve("instance-b.log"))) {
      a.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(90));
      b.awaitLine("STREAMS-STATE RUNNING", Duration.ofSeconds(90));

      // The internal topics got the cluster's default replication factor.
      String changelog = "cw-app-word-counts-changelog";
      int coordinator;
      try (Admin admin = NODES.get(0).admin()) {
        TopicDescription d =
            admin.describeTopics(List.of(changelog)).allTopicNames().get(20, TimeUnit.SECONDS).get(changelog);
        d.partitions().forEach(p -> assertEquals(3, p.replicas().size(), "replicas of " + changelog));
        Node c = admin.describeConsumerGroups(List.of("cw-app")).all().get(20, TimeUnit.SECONDS).get("cw-app").coordinator();
        coordinator = c.id();
      }

      Topics.readCommitted(NODES.get(0), "cw-out", r -> r.size() >= 200, Duration.ofSeconds(60), Duration.ZERO);
      StromBroker victim = NODES.get(coordinator - 1);
      victim.kill();
      StromBroker alive = NODES.get(coordinator == 1 ? 1 : 0);
      List<ConsumerRecord<byte[], byte[]>> mid =
          Topics.readCommitted(alive, "cw-out", r -> r.size() >= 900, Duration.ofSeconds(90), Duration.ZERO);
      assertTrue(mid.size() < 4500, "progress before instance A is killed: " + mid.size());
      a.kill();
      System.out.printf(
          "killed broker %d (the group's coordinator), then instance A after %d output records%n",
          coordinator, mid.size());

      List<ConsumerRecord<byte[], byte[]>> out =
          Topics.readCommitted(alive, "cw-out", WordCountTest.reached(expected), Duration.ofSeconds(150));
      assertTrue(
          WordCountTest.reached(expected).test(out),
          "final counts not reached\n" + b.logTail() + alive.logTail());
      WordCountTest.assertExact(expected, out);
    }
  }
}
