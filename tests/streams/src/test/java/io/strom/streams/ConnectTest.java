package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strom.compat.StromBroker;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Kafka Connect in distributed mode, two workers (separate JVMs) with exactly-once source support
 * (KIP-618) enabled, on one Strom broker: the REST API as an operator uses it, FileStreamSource to
 * a topic to FileStreamSink line by line, a worker killed with SIGKILL while its source task
 * reads, and the config, offset and status topics read back after a broker restart. The tests
 * run in order on one worker cluster.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConnectTest {
  @RegisterExtension
  static final StromBroker BROKER =
      new StromBroker()
          .set("group.initial.rebalance.delay.ms", "200")
          .set("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000");

  private static final String GROUP = "strom-connect";
  /** Exactly-once source support; sinks read committed records only. */
  private static final Map<String, String> EOS =
      Map.of("exactly.once.source.support", "enabled", "consumer.isolation.level", "read_committed");
  private static final Pattern WORKER_ID = Pattern.compile("\"worker_id\"\\s*:\\s*\"([^\"]+)\"");

  private static Path dir;
  private static final List<ConnectWorker> WORKERS = new ArrayList<>();

  @BeforeAll
  static void startWorkers() throws Exception {
    dir = Files.createTempDirectory("strom-connect-");
    WORKERS.add(ConnectWorker.start("worker-1", BROKER, GROUP, dir, EOS));
    WORKERS.add(ConnectWorker.start("worker-2", BROKER, GROUP, dir, EOS));
    for (ConnectWorker w : WORKERS) {
      w.awaitReady(Duration.ofSeconds(90));
    }
  }

  @AfterAll
  static void stopWorkers() {
    for (ConnectWorker w : WORKERS) {
      w.close();
    }
  }

  private static ConnectWorker anyLiveWorker() {
    for (ConnectWorker w : WORKERS) {
      if (w.alive()) {
        return w;
      }
    }
    throw new IllegalStateException("no live worker");
  }

  private static String logs() {
    StringBuilder b = new StringBuilder();
    for (ConnectWorker w : WORKERS) {
      b.append(w.logTail());
    }
    return b.append(BROKER.logTail()).toString();
  }

  private static HttpResponse<String> rest(String method, String path, String json) throws Exception {
    return anyLiveWorker().call(method, path, json);
  }

  private static void await(String what, Duration timeout, BooleanSupplier cond) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (cond.getAsBoolean()) {
        return;
      }
      Thread.sleep(200);
    }
    throw new AssertionError("timed out waiting for " + what + "\n" + logs());
  }

  private static String status(String connector) {
    try {
      HttpResponse<String> r = rest("GET", "/connectors/" + connector + "/status", null);
      return r.statusCode() == 200 ? r.body() : r.statusCode() + " " + r.body();
    } catch (Exception e) {
      return e.toString();
    }
  }

  /** True when the connector and all its tasks (at least one) are in {@code state}. */
  private static boolean allIn(String connector, String state) {
    String s = status(connector);
    int tasks = s.indexOf("\"tasks\"");
    if (tasks < 0) {
      return false;
    }
    String taskPart = s.substring(tasks);
    int states = taskPart.split("\"state\"", -1).length - 1;
    int matching = taskPart.split("\"state\":\"" + state + "\"", -1).length - 1;
    return s.substring(0, tasks).contains("\"state\":\"" + state + "\"") && states > 0 && states == matching;
  }

  /** The worker running task 0 of {@code connector}, per the status API. */
  private static String taskWorker(String connector) {
    String s = status(connector);
    int tasks = s.indexOf("\"tasks\"");
    Matcher m = WORKER_ID.matcher(tasks < 0 ? "" : s.substring(tasks));
    return m.find() ? m.group(1) : "";
  }

  private static String fileConnector(String cls, String file, String topicKey, String topic) {
    return "{\"connector.class\":\"" + cls + "\",\"tasks.max\":\"1\",\"file\":\"" + file + "\",\""
        + topicKey + "\":\"" + topic + "\"}";
  }

  private static void create(String name, String configJson) throws Exception {
    HttpResponse<String> r = rest("PUT", "/connectors/" + name + "/config", configJson);
    assertTrue(r.statusCode() == 201 || r.statusCode() == 200, "create " + name + ": " + r.statusCode() + " " + r.body());
  }

  private static List<String> numbered(String prefix, int from, int to) {
    List<String> out = new ArrayList<>();
    for (int i = from; i < to; i++) {
      out.add(String.format("%s-%05d", prefix, i));
    }
    return out;
  }

  private static void append(Path file, List<String> lines) throws IOException {
    Files.write(file, lines, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
  }

  private static List<String> readLines(Path file) {
    try {
      return Files.exists(file) ? Files.readAllLines(file, StandardCharsets.UTF_8) : List.of();
    } catch (IOException e) {
      return List.of();
    }
  }

  private static List<String> topicValues(String topic, int expected, Duration timeout) {
    List<String> out = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : Topics.readCommitted(BROKER, topic, rs -> rs.size() >= expected, timeout)) {
      out.add(Topics.str(r.value()));
    }
    return out;
  }

  @Test
  @Order(1)
  void restApiAndFileSourceToSinkLineByLine() throws Exception {
    HttpResponse<String> plugins = rest("GET", "/connector-plugins", null);
    assertEquals(200, plugins.statusCode());
    for (String cls : List.of("FileStreamSourceConnector", "FileStreamSinkConnector", "MirrorSourceConnector")) {
      assertTrue(plugins.body().contains(cls), cls + " in " + plugins.body());
    }

    Path in = dir.resolve("lines-in.txt");
    Path out = dir.resolve("lines-out.txt");
    List<String> expected = numbered("line", 0, 300);
    append(in, expected);
    create("file-source", fileConnector("org.apache.kafka.connect.file.FileStreamSourceConnector", in.toString(), "topic", "lines"));
    create("file-sink", fileConnector("org.apache.kafka.connect.file.FileStreamSinkConnector", out.toString(), "topics", "lines"));
    await("both connectors RUNNING", Duration.ofSeconds(60), () -> allIn("file-source", "RUNNING") && allIn("file-sink", "RUNNING"));
    await("300 lines in the sink file", Duration.ofSeconds(60), () -> readLines(out).size() >= 300);
    assertEquals(expected, readLines(out), "sink file");

    HttpResponse<String> list = rest("GET", "/connectors", null);
    assertTrue(list.body().contains("\"file-source\"") && list.body().contains("\"file-sink\""), list.body());
    HttpResponse<String> cfg = rest("GET", "/connectors/file-sink/config", null);
    assertTrue(cfg.body().contains(out.toString()), cfg.body());

    // Paused: new lines stay in the topic; resumed: they arrive.
    assertEquals(202, rest("PUT", "/connectors/file-sink/pause", null).statusCode());
    await("file-sink PAUSED", Duration.ofSeconds(30), () -> allIn("file-sink", "PAUSED"));
    List<String> more = numbered("line", 300, 350);
    append(in, more);
    await("350 lines in the topic", Duration.ofSeconds(30), () -> topicValues("lines", 350, Duration.ofSeconds(5)).size() >= 350);
    assertEquals(300, readLines(out).size(), "a paused sink writes nothing");
    assertEquals(202, rest("PUT", "/connectors/file-sink/resume", null).statusCode());
    await("file-sink RUNNING", Duration.ofSeconds(30), () -> allIn("file-sink", "RUNNING"));
    await("350 lines in the sink file", Duration.ofSeconds(60), () -> readLines(out).size() >= 350);

    // Restart of the source and its task: it resumes at its offset (nothing read twice).
    HttpResponse<String> restart = rest("POST", "/connectors/file-source/restart?includeTasks=true", null);
    assertTrue(restart.statusCode() == 202 || restart.statusCode() == 204, restart.statusCode() + " " + restart.body());
    await("file-source RUNNING again", Duration.ofSeconds(30), () -> allIn("file-source", "RUNNING"));
    List<String> last = numbered("line", 350, 400);
    append(in, last);
    await("400 lines in the sink file", Duration.ofSeconds(60), () -> readLines(out).size() >= 400);
    List<String> all = numbered("line", 0, 400);
    assertEquals(all, readLines(out), "sink file: every line once, in order");
    assertEquals(all, topicValues("lines", 400, Duration.ofSeconds(20)), "topic: every line once, in order");

    assertEquals(204, rest("DELETE", "/connectors/file-sink", null).statusCode());
    await("file-sink gone", Duration.ofSeconds(30), () -> status("file-sink").startsWith("404"));
    assertEquals(404, rest("GET", "/connectors/no-such-connector/status", null).statusCode());
  }

  @Test
  @Order(2)
  void workerKilledWhileItsSourceTaskReadsNoDuplicates() throws Exception {
    Path in = dir.resolve("eos-in.txt");
    Path out = dir.resolve("eos-out.txt");
    Files.createFile(in);
    create("eos-source", fileConnector("org.apache.kafka.connect.file.FileStreamSourceConnector", in.toString(), "topic", "eos-lines"));
    create("eos-sink", fileConnector("org.apache.kafka.connect.file.FileStreamSinkConnector", out.toString(), "topics", "eos-lines"));
    await("eos connectors RUNNING", Duration.ofSeconds(60), () -> allIn("eos-source", "RUNNING") && allIn("eos-sink", "RUNNING"));

    // A writer appends lines while the source reads them; the source task's worker dies midway.
    List<String> expected = numbered("eos", 0, 1500);
    Thread writer =
        new Thread(
            () -> {
              try {
                for (int i = 0; i < expected.size(); i += 10) {
                  append(in, expected.subList(i, i + 10));
                  Thread.sleep(40);
                }
              } catch (IOException | InterruptedException e) {
                throw new IllegalStateException(e);
              }
            });
    writer.start();
    await("300 records from the source", Duration.ofSeconds(60), () -> topicValues("eos-lines", 300, Duration.ofSeconds(3)).size() >= 300);
    String victim = taskWorker("eos-source");
    ConnectWorker killed = null;
    for (ConnectWorker w : WORKERS) {
      if (w.workerId().equals(victim)) {
        killed = w;
      }
    }
    assertTrue(killed != null, "eos-source's task runs on " + victim);
    killed.kill();
    int before = topicValues("eos-lines", 0, Duration.ofSeconds(1)).size();
    System.out.printf("killed %s (eos-source's task) with %d of %d lines in the topic%n", killed.name, before, expected.size());
    writer.join();

    ConnectWorker survivor = anyLiveWorker();
    await("eos-source's task on the survivor", Duration.ofSeconds(60),
        () -> allIn("eos-source", "RUNNING") && taskWorker("eos-source").equals(survivor.workerId()));
    List<String> topic = topicValues("eos-lines", expected.size(), Duration.ofSeconds(60));
    assertEquals(expected, topic, "topic read_committed: every line once, in order");
    await("all lines in the sink file", Duration.ofSeconds(60), () -> new LinkedHashSet<>(readLines(out)).size() >= expected.size());
    List<String> sink = readLines(out);
    assertEquals(expected, new ArrayList<>(new LinkedHashSet<>(sink)), "sink file: complete and in order");
    System.out.printf("sink file: %d lines for %d distinct (a sink is at-least-once)%n", sink.size(), expected.size());
  }

  @Test
  @Order(3)
  void internalTopicsSurviveABrokerRestart() throws Exception {
    BROKER.stop();
    BROKER.start();
    // A fresh worker, started after the restart, learns everything from the three topics.
    for (ConnectWorker w : WORKERS) {
      w.kill();
    }
    ConnectWorker fresh = ConnectWorker.start("worker-3", BROKER, GROUP, dir, EOS);
    WORKERS.add(fresh);
    fresh.awaitReady(Duration.ofSeconds(90));
    HttpResponse<String> list = fresh.call("GET", "/connectors", null);
    for (String c : List.of("file-source", "eos-source", "eos-sink")) {
      assertTrue(list.body().contains("\"" + c + "\""), c + " in " + list.body());
    }
    assertTrue(!list.body().contains("\"file-sink\""), "the deleted connector stays deleted: " + list.body());
    await("connectors RUNNING on the fresh worker", Duration.ofSeconds(60),
        () -> allIn("eos-source", "RUNNING") && allIn("eos-sink", "RUNNING") && allIn("file-source", "RUNNING")
            && taskWorker("eos-source").equals(fresh.workerId()));
    // The source resumes at its stored offset: only the new lines reach the topic.
    List<String> more = numbered("eos", 1500, 1600);
    append(dir.resolve("eos-in.txt"), more);
    List<String> expected = numbered("eos", 0, 1600);
    assertEquals(expected, topicValues("eos-lines", expected.size(), Duration.ofSeconds(60)), "topic after the restart");
    await("1600 lines in the sink file", Duration.ofSeconds(60),
        () -> new LinkedHashSet<>(readLines(dir.resolve("eos-out.txt"))).size() >= expected.size());
  }
}
