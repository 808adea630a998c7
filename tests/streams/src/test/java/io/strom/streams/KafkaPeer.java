package io.strom.streams;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One Apache Kafka 4.4.0 node (KRaft, broker and controller) started by {@code scripts/kafka-peer}
 * on free ports in a temp dir, for a test class: {@code @RegisterExtension static final KafkaPeer
 * KAFKA = new KafkaPeer();}. Its JVM is killed by PID when the class ends, passed or failed (and
 * by a shutdown hook if the test JVM dies first). The jars come from Maven Central once, cached by
 * {@code scripts/kafka}.
 */
final class KafkaPeer implements Cluster, BeforeAllCallback, AfterAllCallback {
  private static final Duration START_TIMEOUT = Duration.ofSeconds(150);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);
  private static final Set<Long> RUNNING = ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> RUNNING.forEach(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly))));
  }

  private Path dir;
  private String bootstrap;
  private final List<Long> pids = new ArrayList<>();

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    Path repo = Paths.get(System.getProperty("strom.repo", "../..")).toAbsolutePath().normalize();
    dir = Files.createTempDirectory("kafka-peer-java-");
    Path out = dir.resolve("start.out");
    Process p =
        new ProcessBuilder(
                repo.resolve("scripts/kafka-peer").toString(), "start", "--json", "--heap", "512m", "--dir",
                dir.resolve("cluster").toString())
            .redirectErrorStream(true)
            .redirectOutput(out.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .start();
    boolean done = p.waitFor(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    if (!done) {
      p.destroyForcibly();
    }
    recordPids();
    String text = Files.readString(out, StandardCharsets.UTF_8);
    Matcher m = Pattern.compile("\"bootstrap\": \"([^\"]+)\"").matcher(text);
    if (!done || p.exitValue() != 0 || !m.find()) {
      stop();
      throw new IllegalStateException("scripts/kafka-peer start failed:\n" + text);
    }
    bootstrap = m.group(1);
  }

  /** The PIDs scripts/kafka-peer recorded, so that they are killed even if the start failed half-way. */
  private void recordPids() throws IOException {
    Path file = dir.resolve("cluster").resolve("pids");
    if (Files.exists(file)) {
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          long pid = Long.parseLong(line.trim());
          pids.add(pid);
          RUNNING.add(pid);
        }
      }
    }
  }

  @Override
  public void afterAll(ExtensionContext context) {
    stop();
  }

  /** SIGTERM to each recorded PID, SIGKILL to what is still alive after the timeout; the dir goes. */
  private void stop() {
    List<ProcessHandle> handles = new ArrayList<>();
    for (long pid : pids) {
      ProcessHandle.of(pid).ifPresent(h -> {
        h.destroy();
        handles.add(h);
      });
    }
    for (ProcessHandle h : handles) {
      try {
        h.onExit().get(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      } catch (Exception e) {
        h.destroyForcibly();
      }
    }
    pids.forEach(RUNNING::remove);
    pids.clear();
    if (dir != null) {
      try (Stream<Path> walk = Files.walk(dir)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // a temp dir left behind is harmless
      }
      dir = null;
    }
  }

  @Override
  public String bootstrap() {
    return bootstrap;
  }

  private Properties clientProps() {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("request.timeout.ms", "15000");
    p.put("default.api.timeout.ms", "20000");
    return p;
  }

  @Override
  public Admin admin() {
    return Admin.create(clientProps());
  }

  @Override
  public KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides) {
    Properties p = clientProps();
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
    p.putAll(overrides);
    return new KafkaProducer<>(p);
  }

  @Override
  public KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides) {
    Properties p = clientProps();
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.putAll(overrides);
    return new KafkaConsumer<>(p);
  }

  @Override
  public void createTopic(String name, int partitions, Map<String, String> configs) {
    try (Admin admin = admin()) {
      admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("creating topic " + name + " on Apache Kafka at " + bootstrap, e);
    }
  }

  @Override
  public String logTail() {
    Path log = dir == null ? null : dir.resolve("cluster").resolve("node1").resolve("kafka.log");
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return "--- last 60 lines of " + log + " ---\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size())) + "\n";
    } catch (IOException | RuntimeException e) {
      return "(no Apache Kafka log)";
    }
  }
}
