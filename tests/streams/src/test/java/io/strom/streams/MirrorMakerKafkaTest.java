package io.strom.streams;

import io.strom.compat.StromBroker;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * MirrorMaker 2 between one single-node Strom cluster and one Apache Kafka 4.4.0 node
 * ({@code scripts/kafka-peer}, started once for the class), in both directions: the same check
 * as {@link MirrorMakerTest} ({@link MirrorCheck}), each direction with its own topic and group.
 */
class MirrorMakerKafkaTest {
  @RegisterExtension static final StromBroker STROM = new StromBroker();
  @RegisterExtension static final KafkaPeer KAFKA = new KafkaPeer();

  @TempDir Path tmp;

  @Test
  void stromToKafka() throws Exception {
    new MirrorCheck(Cluster.strom(STROM), "strom", KAFKA, "kafka", tmp).run("mm-to-kafka", "mm-group-to-kafka");
  }

  @Test
  void kafkaToStrom() throws Exception {
    new MirrorCheck(KAFKA, "kafka", Cluster.strom(STROM), "strom", tmp).run("mm-to-strom", "mm-group-to-strom");
  }
}
