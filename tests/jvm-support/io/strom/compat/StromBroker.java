package io.strom.compat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
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
 * One real {@code strom broker} process on 127.0.0.1:&lt;ephemeral port&gt; with its data in a temp
 * dir, killed by PID when done.
 *
 * <p>Shared per test class as a JUnit extension:
 *
 * <pre>
 *   &#64;RegisterExtension static final StromBroker BROKER = new StromBroker();
 *   &#64;RegisterExtension static final StromBroker NO_AUTO =
 *       new StromBroker().set("auto.create.topics.enable", "false");
 * </pre>
 *
 * or started by hand for one test: {@code try (StromBroker b = new StromBroker().set(k, v).start())}.
 *
 * <p>The binary is never built here (scripts/test builds it): {@code $STROM_BIN}, else
 * target/debug/strom under the repository ({@code $CARGO_TARGET_DIR} if set).
 */
public final class StromBroker implements BeforeAllCallback, AfterAllCallback, AutoCloseable {
  private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);
  private static final int LOG_TAIL_LINES = 60;
  private static final Set<Process> RUNNING = ConcurrentHashMap.newKeySet();

  static {
    // If the JVM dies before a class's teardown, still leave no broker behind.
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  for (Process p : RUNNING) {
                    p.destroyForcibly();
                  }
                }));
  }

  private final Map<String, String> extra = new LinkedHashMap<>();
  private Path tmp;
  private Path dataDir;
  private Path logPath;
  private int port;
  private int saslPort;
  private boolean saslListener;
  private int starts;
  private Process process;

  /** An extra broker setting, passed as {@code --set key=value} (last one wins). */
  public StromBroker set(String key, String value) {
    extra.put(key, value);
    return this;
  }

  /**
   * Adds a SASL_PLAINTEXT listener on a second ephemeral port beside the PLAINTEXT one (SCRAM and
   * PLAIN users log in there; the PLAINTEXT listener's principal is User:ANONYMOUS).
   */
  public StromBroker withSaslPlaintextListener() {
    saslListener = true;
    return this;
  }

  /** The SASL_PLAINTEXT listener's address ({@link #withSaslPlaintextListener()}). */
  public String saslBootstrap() {
    return "127.0.0.1:" + saslPort;
  }

  public String bootstrap() {
    return "127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  public Path dataDir() {
    return dataDir;
  }

  public long pid() {
    return process == null ? -1 : process.pid();
  }

  public boolean alive() {
    return process != null && process.isAlive();
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    start();
  }

  @Override
  public void afterAll(ExtensionContext context) {
    close();
  }

  /**
   * Starts the process (again after {@link #kill()} or {@link #stop()}: same port, same data dir)
   * and waits until it accepts TCP.
   */
  public StromBroker start() {
    if (alive()) {
      throw new IllegalStateException("broker already running at " + bootstrap());
    }
    try {
      if (tmp == null) {
        tmp = Files.createTempDirectory("strom-java-");
        dataDir = Files.createDirectory(tmp.resolve("data"));
        port = freePort();
        saslPort = saslListener ? freePort() : 0;
      }
      List<String> cmd = command();
      logPath = tmp.resolve("broker-" + starts + ".log");
      starts++;
      ProcessBuilder pb =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(logPath.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
      pb.environment().putIfAbsent("STROM_LOG", "info");
      pb.environment().putIfAbsent("RUST_BACKTRACE", "1");
      process = pb.start();
      RUNNING.add(process);
      long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new IllegalStateException(
              "strom broker exited with status "
                  + process.exitValue()
                  + " during start-up\ncommand: "
                  + String.join(" ", cmd)
                  + "\n"
                  + logTail());
        }
        if (accepts(port)) {
          return this;
        }
        Thread.sleep(100);
      }
      kill();
      throw new IllegalStateException(
          "strom broker did not accept TCP on "
              + bootstrap()
              + " within "
              + START_TIMEOUT.toSeconds()
              + " s\ncommand: "
              + String.join(" ", cmd)
              + "\n"
              + logTail());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private List<String> command() {
    Map<String, String> config = new LinkedHashMap<>();
    config.put("log.dirs", dataDir.toString());
    String listeners = "PLAINTEXT://127.0.0.1:" + port;
    if (saslListener) {
      listeners += ",SASL_PLAINTEXT://127.0.0.1:" + saslPort;
    }
    config.put("listeners", listeners);
    config.put("num.partitions", "1");
    config.put("auto.create.topics.enable", "true");
    // Brokers of several layers run side by side: the HTTP endpoint takes any free port.
    config.put("http.listener", "127.0.0.1:0");
    config.putAll(extra);
    List<String> cmd = new ArrayList<>();
    cmd.add(binary().toString());
    cmd.add("broker");
    for (Map.Entry<String, String> e : config.entrySet()) {
      cmd.add("--set");
      cmd.add(e.getKey() + "=" + e.getValue());
    }
    return cmd;
  }

  /** SIGKILL by PID, as a crash would. */
  public void kill() {
    if (process != null && process.isAlive()) {
      process.destroyForcibly();
      waitFor(process);
    }
    if (process != null) {
      RUNNING.remove(process);
    }
  }

  /** SIGTERM by PID, then SIGKILL if it does not exit in time. */
  public void stop() {
    if (process == null || !process.isAlive()) {
      return;
    }
    process.destroy();
    waitFor(process);
    kill();
  }

  @Override
  public void close() {
    stop();
    if (tmp != null) {
      deleteTree(tmp);
      tmp = null;
    }
  }

  /** The last lines of every log this broker wrote, for failure messages. */
  public String logTail() {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < starts && tmp != null; i++) {
      Path path = tmp.resolve("broker-" + i + ".log");
      try {
        List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        out.append("--- last ").append(LOG_TAIL_LINES).append(" lines of ").append(path);
        out.append(" ---\n");
        for (String line : lines.subList(Math.max(0, lines.size() - LOG_TAIL_LINES), lines.size())) {
          out.append(line).append('\n');
        }
      } catch (IOException | RuntimeException e) {
        // a log that cannot be read (or is not UTF-8) leaves only its name
        out.append("(cannot read ").append(path).append(")\n");
      }
    }
    return out.length() == 0 ? "(no broker log)" : out.toString();
  }

  // ------------------------------------------------------------------ clients

  /** Client properties every client of this broker needs; short timeouts so failures are quick. */
  public Properties clientProps() {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap());
    p.put("request.timeout.ms", "15000");
    p.put("default.api.timeout.ms", "20000");
    return p;
  }

  public Admin admin() {
    Properties p = clientProps();
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
    return Admin.create(p);
  }

  /** A byte[] producer with the client's defaults, plus {@code overrides}. */
  public KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides) {
    Properties p = clientProps();
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
    p.putAll(overrides);
    return new KafkaProducer<>(p);
  }

  public KafkaProducer<byte[], byte[]> producer() {
    return producer(Map.of());
  }

  /** A byte[] consumer reading from the earliest offset, plus {@code overrides}. */
  public KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides) {
    Properties p = clientProps();
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.putAll(overrides);
    return new KafkaConsumer<>(p);
  }

  /** Creates a topic (replication factor 1) and waits for the answer. */
  public void createTopic(String name, int partitions, Map<String, String> configs) {
    try (Admin admin = admin()) {
      admin
          .createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs)))
          .all()
          .get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("creating topic " + name + " on " + bootstrap(), e);
    }
  }

  public void createTopic(String name, int partitions) {
    createTopic(name, partitions, Map.of());
  }

  // ------------------------------------------------------------------ helpers

  public static Path binary() {
    String override = System.getenv("STROM_BIN");
    Path path;
    if (override != null && !override.isEmpty()) {
      path = Paths.get(override);
    } else {
      Path repo = Paths.get(System.getProperty("strom.repo", "../..")).toAbsolutePath().normalize();
      String targetEnv = System.getenv("CARGO_TARGET_DIR");
      Path target = targetEnv == null || targetEnv.isEmpty() ? repo.resolve("target") : Paths.get(targetEnv);
      if (!target.isAbsolute()) {
        target = repo.resolve(target);
      }
      path = target.resolve("debug").resolve("strom");
    }
    if (!Files.isRegularFile(path) || !Files.isExecutable(path)) {
      throw new IllegalStateException(
          "strom binary not found at "
              + path
              + ": build it first with `cargo build -p strom` (scripts/test does this), or set STROM_BIN");
    }
    return path;
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      return s.getLocalPort();
    }
  }

  private static boolean accepts(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 500);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static void waitFor(Process p) {
    try {
      p.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> walk = Files.walk(root)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // a temp dir left behind is harmless
    }
  }
}
