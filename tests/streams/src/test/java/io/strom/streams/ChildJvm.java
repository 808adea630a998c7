package io.strom.streams;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A Java application (a Kafka Streams instance, a Connect worker) as its own JVM process, started
 * with this module's test classpath, its output in a log file; killed with SIGKILL by PID as a
 * crash would, or stopped with SIGTERM.
 */
final class ChildJvm implements AutoCloseable {
  private static final int LOG_TAIL_LINES = 80;
  private static final Set<Process> RUNNING = ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  for (Process p : RUNNING) {
                    p.destroyForcibly();
                  }
                }));
  }

  private final String name;
  private final Path log;
  private final Process process;

  private ChildJvm(String name, Path log, Process process) {
    this.name = name;
    this.log = log;
    this.process = process;
  }

  /** The classpath the tests themselves run with (Surefire passes it as a property). */
  static String testClasspath() {
    String cp = System.getProperty("surefire.test.class.path");
    return cp == null || cp.isEmpty() ? System.getProperty("java.class.path") : cp;
  }

  /** Starts {@code mainClass} with {@code args} on {@code classpath}; output goes to {@code log}. */
  static ChildJvm start(String name, String classpath, String mainClass, List<String> args, Path log) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
    // Small and quick to start: the machine running the suite has two cores.
    cmd.add("-Xmx384m");
    cmd.add("-XX:+UseSerialGC");
    cmd.add("-XX:TieredStopAtLevel=1");
    cmd.add("-Dslf4j.internal.verbosity=WARN");
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(mainClass);
    cmd.addAll(args);
    try {
      Process p =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
              .start();
      RUNNING.add(p);
      return new ChildJvm(name, log, p);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static ChildJvm start(String name, Class<?> mainClass, List<String> args, Path log) {
    return start(name, testClasspath(), mainClass.getName(), args, log);
  }

  boolean alive() {
    return process.isAlive();
  }

  long pid() {
    return process.pid();
  }

  /** Waits until the log has a line containing {@code marker}; fails if the process exits first. */
  void awaitLine(String marker, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (logText().contains(marker)) {
        return;
      }
      if (!process.isAlive()) {
        throw new IllegalStateException(
            name + " exited (" + process.exitValue() + ") before printing '" + marker + "'\n" + logTail());
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(
        name + " did not print '" + marker + "' within " + timeout.toSeconds() + " s\n" + logTail());
  }

  String logText() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException | RuntimeException e) {
      return "";
    }
  }

  String logTail() {
    String[] lines = logText().split("\n");
    StringBuilder out = new StringBuilder("--- last lines of " + name + " (" + log + ") ---\n");
    for (int i = Math.max(0, lines.length - LOG_TAIL_LINES); i < lines.length; i++) {
      out.append(lines[i]).append('\n');
    }
    return out.toString();
  }

  /** SIGKILL by PID. */
  void kill() {
    process.destroyForcibly();
    waitFor(Duration.ofSeconds(10));
    if (RUNNING.remove(process)) {
      keepLog();
    }
  }

  /** A copy of the log under target/child-logs/, for reading after the run (temp dirs go). */
  private void keepLog() {
    try {
      Path dir = Files.createDirectories(Paths.get("target", "child-logs"));
      Files.copy(log, dir.resolve(name + "-" + process.pid() + ".log"), StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException | RuntimeException e) {
      // only a convenience
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within {@code grace}. */
  void stop(Duration grace) {
    if (process.isAlive()) {
      process.destroy();
      waitFor(grace);
    }
    kill();
  }

  @Override
  public void close() {
    stop(Duration.ofSeconds(10));
  }

  private void waitFor(Duration d) {
    try {
      process.waitFor(d.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
