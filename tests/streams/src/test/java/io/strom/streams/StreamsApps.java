package io.strom.streams;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;

/**
 * The Kafka Streams applications the tests run, each as its own JVM process:
 *
 * <pre>
 *   StreamsApps wordcount BOOTSTRAP APP_ID STATE_DIR IN OUT [SLEEP_MS_PER_RECORD]
 *   StreamsApps windows-join BOOTSTRAP APP_ID STATE_DIR
 * </pre>
 *
 * Prints {@code STREAMS-STATE RUNNING} (and every other state) as the instance changes state, and
 * runs until SIGTERM. Every store's cache is off, so each update reaches the output topic: a word
 * seen n times has the counts 1..n in the output, each once.
 */
public final class StreamsApps {
  private StreamsApps() {}

  public static void main(String[] args) throws Exception {
    String kind = args[0];
    Properties props = new Properties();
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[3]);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    // Test timing only: a killed instance's tasks move after 6 s instead of 45 s.
    props.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 6000);
    props.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), 1000);
    Topology topology;
    switch (kind) {
      case "wordcount":
        topology = wordCount(args[4], args[5], args.length > 6 ? Long.parseLong(args[6]) : 0);
        break;
      case "windows-join":
        topology = windowsAndJoin();
        break;
      default:
        throw new IllegalArgumentException("unknown application " + kind);
    }
    final KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener(
        (now, before) -> {
          System.out.println("STREAMS-STATE " + now);
          if (now == KafkaStreams.State.RUNNING) {
            List<String> tasks = new ArrayList<>();
            streams.metadataForLocalThreads().forEach(t -> t.activeTasks().forEach(m -> tasks.add(m.taskId().toString())));
            System.out.println("STREAMS-ACTIVE-TASKS " + String.join(",", tasks));
          }
          System.out.flush();
          if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
            done.countDown();
          }
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(10));
                  done.countDown();
                }));
    streams.start();
    done.await();
    System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
  }

  /** Lines to words to counts per word; {@code sleepMs} slows each input line down. */
  static Topology wordCount(String in, String out, long sleepMs) {
    StreamsBuilder builder = new StreamsBuilder();
    builder.<String, String>stream(in)
        .peek(
            (k, v) -> {
              if (sleepMs > 0) {
                try {
                  Thread.sleep(sleepMs);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              }
            })
        .flatMapValues(
            line -> {
              List<String> words = new ArrayList<>();
              for (String w : line.toLowerCase(Locale.ROOT).split("\\W+")) {
                if (!w.isEmpty()) {
                  words.add(w);
                }
              }
              return words;
            })
        .groupBy((k, word) -> word)
        .count(Materialized.as("word-counts"))
        .toStream()
        .to(out, Produced.with(Serdes.String(), Serdes.Long()));
    return builder.build();
  }

  /**
   * Per key: counts in 10 s tumbling windows and in 10 s windows hopping by 5 s, both with 5 s of
   * grace ("KEY@WINDOW_START_MS" to the count); and clicks joined with the users table (user id to
   * "PAGE@REGION").
   */
  static Topology windowsAndJoin() {
    StreamsBuilder builder = new StreamsBuilder();
    KStream<String, String> events = builder.stream("win-in");
    events
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
        .count(Materialized.as("tumbling-counts"))
        .toStream()
        .map(StreamsApps::windowKey)
        .to("win-tumbling-out", Produced.with(Serdes.String(), Serdes.Long()));
    events
        .groupByKey()
        .windowedBy(
            TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5))
                .advanceBy(Duration.ofSeconds(5)))
        .count(Materialized.as("hopping-counts"))
        .toStream()
        .map(StreamsApps::windowKey)
        .to("win-hopping-out", Produced.with(Serdes.String(), Serdes.Long()));

    KTable<String, String> users = builder.table("join-users", Consumed.with(Serdes.String(), Serdes.String()));
    builder.<String, String>stream("join-clicks")
        .join(users, (page, region) -> page + "@" + region)
        .to("join-out");
    return builder.build();
  }

  private static KeyValue<String, Long> windowKey(Windowed<String> key, Long count) {
    return KeyValue.pair(key.key() + "@" + key.window().start(), count);
  }
}
