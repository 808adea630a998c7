package io.strom.streams;

import io.strom.compat.StromBroker;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * MirrorMaker 2 (dedicated mode, its own JVM) from one single-node Strom cluster ("primary") to
 * another ("backup"): the topic with its partitions and configs, its records, and a consumer
 * group's committed offsets, translated through checkpoints, so a consumer that moves to the
 * backup resumes where it left off ({@link MirrorCheck}).
 */
class MirrorMakerTest {
  @RegisterExtension static final StromBroker PRIMARY = new StromBroker();
  @RegisterExtension static final StromBroker BACKUP = new StromBroker();

  @TempDir Path tmp;

  @Test
  void topicsConfigsRecordsAndGroupOffsetsReplicate() throws Exception {
    new MirrorCheck(Cluster.strom(PRIMARY), "primary", Cluster.strom(BACKUP), "backup", tmp).run("mm-orders", "mm-group");
  }
}
