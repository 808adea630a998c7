package io.strom.streams;

import io.strom.compat.StromBroker;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Kafka Connect worker in distributed mode ({@code ConnectDistributed}) as its own JVM, on the
 * worker classpath tests/streams/run resolves (connect-worker/pom.xml), with a REST listener on an
 * ephemeral port; and the REST calls an operator makes.
 */
final class ConnectWorker implements AutoCloseable {
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  final String name;
  final int port;
  private final ChildJvm jvm;

  private ConnectWorker(String name, int port, ChildJvm jvm) {
    this.name = name;
    this.port = port;
    this.jvm = jvm;
  }

  /** The worker JVMs' classpath: Connect, FileStream and MirrorMaker 2 jars. */
  static String classpath() {
    Path file = Paths.get(System.getProperty("connect.classpath.file", "target/connect-worker.classpath"));
    try {
      return Files.readString(file, StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      throw new UncheckedIOException("no worker classpath (tests/streams/run writes " + file + ")", e);
    }
  }

  /**
   * Starts a worker of group {@code groupId}; {@code extra} settings go to its properties file
   * after the defaults below.
   */
  static ConnectWorker start(String name, StromBroker broker, String groupId, Path dir, Map<String, String> extra)
      throws IOException {
    int port = StromBroker.freePort();
    Map<String, String> props = new TreeMap<>();
    props.put("bootstrap.servers", broker.bootstrap());
    props.put("group.id", groupId);
    props.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
    props.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
    props.put("config.storage.topic", groupId + "-configs");
    props.put("offset.storage.topic", groupId + "-offsets");
    props.put("status.storage.topic", groupId + "-status");
    // One broker: replication factor 1, as on a one-node Kafka.
    props.put("config.storage.replication.factor", "1");
    props.put("offset.storage.replication.factor", "1");
    props.put("status.storage.replication.factor", "1");
    props.put("listeners", "http://127.0.0.1:" + port);
    props.put("rest.advertised.host.name", "127.0.0.1");
    props.put("rest.advertised.port", Integer.toString(port));
    // Test timing only: offsets flushed often, a dead worker's tasks reassigned within seconds.
    props.put("offset.flush.interval.ms", "500");
    props.put("session.timeout.ms", "6000");
    props.put("heartbeat.interval.ms", "1000");
    props.put("scheduled.rebalance.max.delay.ms", "2000");
    props.putAll(extra);
    StringBuilder text = new StringBuilder();
    props.forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
    Path file = dir.resolve(name + ".properties");
    Files.writeString(file, text.toString(), StandardCharsets.UTF_8);
    ChildJvm jvm =
        ChildJvm.start(
            name,
            classpath(),
            "org.apache.kafka.connect.cli.ConnectDistributed",
            List.of(file.toString()),
            dir.resolve(name + ".log"));
    return new ConnectWorker(name, port, jvm);
  }

  /** "127.0.0.1:PORT", as the REST API names the worker. */
  String workerId() {
    return "127.0.0.1:" + port;
  }

  boolean alive() {
    return jvm.alive();
  }

  String logTail() {
    return jvm.logTail();
  }

  /** Waits until the worker has joined its group and answers GET /connectors. */
  ConnectWorker awaitReady(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      if (!jvm.alive()) {
        throw new IllegalStateException(name + " exited\n" + jvm.logTail());
      }
      try {
        HttpResponse<String> r = call("GET", "/connectors", null);
        if (r.statusCode() == 200) {
          return this;
        }
        last = r.statusCode() + " " + r.body();
      } catch (IOException e) {
        last = e.toString();
      }
      Thread.sleep(250);
    }
    throw new IllegalStateException(name + " not ready: " + last + "\n" + jvm.logTail());
  }

  HttpResponse<String> call(String method, String path, String json) throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30));
    HttpRequest.BodyPublisher body =
        json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json);
    b.method(method, body);
    if (json != null) {
      b.header("Content-Type", "application/json");
    }
    b.header("Accept", "application/json");
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  void kill() {
    jvm.kill();
  }

  @Override
  public void close() {
    jvm.stop(Duration.ofSeconds(15));
  }
}
