package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** AdminClient calls Strom serves, each checked by its effect. */
class AdminTest {
  @RegisterExtension static final StromBroker BROKER = new StromBroker();
  private static Admin admin;

  @BeforeAll
  static void connect() {
    admin = BROKER.admin();
  }

  @AfterAll
  static void disconnect() {
    if (admin != null) {
      admin.close();
    }
  }

  static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
    return f.get(30, TimeUnit.SECONDS);
  }

  private static void produce(String topic, int partition, int n) throws Exception {
    try (KafkaProducer<byte[], byte[]> producer = BROKER.producer()) {
      for (int i = 0; i < n; i++) {
        producer
            .send(new ProducerRecord<>(topic, partition, ("k" + i).getBytes(), ("v" + i).getBytes()))
            .get(30, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void createDescribeGrowListAndDeleteTopics() throws Exception {
    String topic = "admin-topic";
    get(
        admin
            .createTopics(
                List.of(new NewTopic(topic, 3, (short) 1).configs(Map.of("cleanup.policy", "compact"))))
            .all());
    assertTrue(get(admin.listTopics().names()).contains(topic));
    TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    assertEquals(3, d.partitions().size());
    assertNotNull(d.topicId());
    d.partitions().forEach(p -> assertEquals(1, p.replicas().size()));
    int node = d.partitions().get(0).leader().id();

    ExecutionException dup =
        assertThrows(
            ExecutionException.class,
            () -> get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all()));
    assertInstanceOf(org.apache.kafka.common.errors.TopicExistsException.class, dup.getCause());

    get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
    TopicDescription grown = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    assertEquals(5, grown.partitions().size());
    assertEquals(node, grown.partitions().get(4).leader().id());
    produce(topic, 4, 1); // the new partition takes writes

    get(admin.deleteTopics(List.of(topic)).all());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (get(admin.listTopics().names()).contains(topic) && System.nanoTime() < deadline) {
      Thread.sleep(200);
    }
    assertFalse(get(admin.listTopics().names()).contains(topic));
    ExecutionException gone =
        assertThrows(ExecutionException.class, () -> get(admin.describeTopics(List.of(topic)).allTopicNames()));
    assertInstanceOf(UnknownTopicOrPartitionException.class, gone.getCause());
  }

  @Test
  void incrementalAlterConfigsIsWhatDescribeConfigsShows() throws Exception {
    String topic = "admin-configs";
    BROKER.createTopic(topic, 1);
    ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
    get(
        admin
            .incrementalAlterConfigs(
                Map.of(
                    res,
                    List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                        new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET))))
            .all());
    Config c = get(admin.describeConfigs(List.of(res)).all()).get(res);
    assertEquals("3600000", c.get("retention.ms").value());
    assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
    assertEquals("200000", c.get("max.message.bytes").value());

    get(
        admin
            .incrementalAlterConfigs(
                Map.of(
                    res,
                    List.of(new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
            .all());
    Config after = get(admin.describeConfigs(List.of(res)).all()).get(res);
    assertEquals("604800000", after.get("retention.ms").value(), "back to the default");
    assertTrue(after.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
    assertEquals("200000", after.get("max.message.bytes").value(), "the other override stays");

    String nodeId = Integer.toString(get(admin.describeCluster().nodes()).iterator().next().id());
    ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, nodeId);
    Config b = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
    assertNotNull(b.get("num.partitions"), "broker configs are described");
    assertEquals("1", b.get("num.partitions").value(), "as the test broker was started");
  }

  @Test
  void deleteRecordsMovesTheLogStartOffset() throws Exception {
    String topic = "admin-delete-records";
    BROKER.createTopic(topic, 1);
    produce(topic, 0, 10);
    TopicPartition tp = new TopicPartition(topic, 0);
    long low =
        get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp))
            .lowWatermark();
    assertEquals(4, low);
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(Map.of())) {
      assertEquals(Map.of(tp, 4L), c.beginningOffsets(List.of(tp)));
      c.assign(List.of(tp));
      c.seekToBeginning(List.of(tp));
      assertEquals(4, Records.poll(c, 6).get(0).offset());
    }
  }

  @Test
  void consumerGroupsDescribeListAlterOffsetsAndDelete() throws Exception {
    String topic = "admin-groups";
    String group = "admin-group";
    BROKER.createTopic(topic, 2);
    produce(topic, 0, 5);
    produce(topic, 1, 5);
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    Map<String, Object> cfg = new HashMap<>();
    cfg.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    cfg.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
    cfg.put(ConsumerConfig.CLIENT_ID_CONFIG, "admin-test-client");
    try (KafkaConsumer<byte[], byte[]> c = BROKER.consumer(cfg)) {
      c.subscribe(List.of(topic));
      Records.poll(c, 10);
      c.commitSync();
      ConsumerGroupDescription live =
          get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
      assertEquals(GroupState.STABLE, live.groupState());
      assertEquals(1, live.members().size());
      assertEquals("admin-test-client", live.members().iterator().next().clientId());
      assertEquals(Set.of(p0, p1), live.members().iterator().next().assignment().topicPartitions());
      Collection<GroupListing> groups = get(admin.listGroups().all());
      assertTrue(groups.stream().anyMatch(g -> g.groupId().equals(group)), groups.toString());
    }
    ConsumerGroupDescription empty = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
    assertEquals(GroupState.EMPTY, empty.groupState());

    Map<TopicPartition, OffsetAndMetadata> offsets =
        get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
    assertEquals(5, offsets.get(p0).offset());
    assertEquals(5, offsets.get(p1).offset());
    get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(2), p1, new OffsetAndMetadata(3))).all());
    offsets = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
    assertEquals(2, offsets.get(p0).offset());
    assertEquals(3, offsets.get(p1).offset());

    get(admin.deleteConsumerGroups(List.of(group)).all());
    assertTrue(
        get(admin.listGroups().all()).stream().noneMatch(g -> g.groupId().equals(group)),
        "deleted group is not listed");
    assertTrue(get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).isEmpty());
  }

  @Test
  void clusterQuorumFeaturesAndLogDirs() throws Exception {
    DescribeClusterResult cluster = admin.describeCluster();
    Collection<org.apache.kafka.common.Node> nodes = get(cluster.nodes());
    assertEquals(1, nodes.size());
    org.apache.kafka.common.Node node = nodes.iterator().next();
    assertEquals("127.0.0.1", node.host());
    assertEquals(BROKER.port(), node.port());
    assertNotNull(get(cluster.clusterId()));
    assertEquals(node.id(), get(cluster.controller()).id());

    QuorumInfo quorum = get(admin.describeMetadataQuorum().quorumInfo());
    assertTrue(quorum.leaderId() >= 0);
    assertEquals(1, quorum.voters().size());
    assertTrue(quorum.highWatermark() >= 0);
    assertTrue(quorum.voters().get(0).logEndOffset() >= quorum.highWatermark());

    // Every finalized feature level lies within what the broker supports.
    FeatureMetadata features = get(admin.describeFeatures().featureMetadata());
    assertFalse(features.finalizedFeatures().isEmpty(), features.toString());
    features
        .finalizedFeatures()
        .forEach(
            (name, level) -> {
              var supported = features.supportedFeatures().get(name);
              assertNotNull(supported, name + " finalized but not supported: " + features);
              assertTrue(
                  level.minVersionLevel() >= supported.minVersion()
                      && level.maxVersionLevel() <= supported.maxVersion(),
                  features.toString());
            });

    String topic = "admin-logdirs";
    BROKER.createTopic(topic, 1);
    produce(topic, 0, 20);
    Map<String, LogDirDescription> dirs =
        get(admin.describeLogDirs(List.of(node.id())).allDescriptions()).get(node.id());
    assertEquals(1, dirs.size(), dirs.toString());
    LogDirDescription dir = dirs.values().iterator().next();
    assertTrue(dir.replicaInfos().containsKey(new TopicPartition(topic, 0)), dir.toString());
    assertTrue(dir.replicaInfos().get(new TopicPartition(topic, 0)).size() > 0);
    assertTrue(dir.totalBytes().isPresent() && dir.usableBytes().isPresent(), dir.toString());
  }

  @Test
  void reassignmentsAndPreferredLeaderElection() throws Exception {
    String topic = "admin-reassign";
    BROKER.createTopic(topic, 2);
    TopicPartition tp = new TopicPartition(topic, 0);
    int node = get(admin.describeCluster().nodes()).iterator().next().id();
    get(
        admin
            .alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(List.of(node)))))
            .all());
    // A reassignment to the replicas it already has completes at once.
    Map<TopicPartition, PartitionReassignment> ongoing = get(admin.listPartitionReassignments().reassignments());
    assertTrue(ongoing.isEmpty(), ongoing.toString());
    TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    assertEquals(node, d.partitions().get(0).replicas().get(0).id());

    // The only replica already leads: Kafka answers ELECTION_NOT_NEEDED per partition.
    Map<TopicPartition, Optional<Throwable>> elected =
        get(admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions());
    assertTrue(elected.get(tp).isPresent(), elected.toString());
    assertInstanceOf(ElectionNotNeededException.class, elected.get(tp).get());
  }

  @Test
  void describeProducersShowsTheIdempotentProducersState() throws Exception {
    String topic = "admin-producers";
    BROKER.createTopic(topic, 1);
    produce(topic, 0, 7);
    TopicPartition tp = new TopicPartition(topic, 0);
    List<ProducerState> states =
        get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
    assertEquals(1, states.size(), states.toString());
    ProducerState s = states.get(0);
    assertTrue(s.producerId() >= 0);
    assertEquals(0, s.producerEpoch());
    assertEquals(6, s.lastSequence(), "sequences 0..6 for seven records");
    assertFalse(s.currentTransactionStartOffset().isPresent());
  }
}
