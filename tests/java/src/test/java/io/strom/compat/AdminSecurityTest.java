package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * ACLs, SCRAM users and client quotas through the AdminClient, on a broker with the authorizer
 * on (README, Security): the PLAINTEXT listener's User:ANONYMOUS is the super user that
 * administers; users log in with SCRAM on the SASL_PLAINTEXT listener, where the ACLs bite.
 */
class AdminSecurityTest {
  @RegisterExtension
  static final StromBroker BROKER =
      new StromBroker()
          .withSaslPlaintextListener()
          .set("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
          .set("super.users", "User:ANONYMOUS");

  private static final String PASSWORD = "java-Pa55word";
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

  static <T> T get(KafkaFuture<T> f) throws Exception {
    return f.get(30, TimeUnit.SECONDS);
  }

  private static Properties asUser(String user, String password, String mechanism) {
    Properties p = new Properties();
    p.put("security.protocol", "SASL_PLAINTEXT");
    p.put("sasl.mechanism", mechanism);
    p.put(
        "sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
            + user
            + "\" password=\""
            + password
            + "\";");
    return p;
  }

  private static KafkaProducer<byte[], byte[]> producerAs(String user) {
    Map<String, Object> cfg = new HashMap<>();
    asUser(user, PASSWORD, "SCRAM-SHA-256").forEach((k, v) -> cfg.put((String) k, v));
    cfg.put("bootstrap.servers", BROKER.saslBootstrap());
    cfg.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
    cfg.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000");
    cfg.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    return BROKER.producer(cfg);
  }

  private static void upsert(String user, ScramMechanism mechanism, int iterations, String password)
      throws Exception {
    get(
        admin
            .alterUserScramCredentials(
                List.of(
                    new UserScramCredentialUpsertion(
                        user, new ScramCredentialInfo(mechanism, iterations), password)))
            .all());
  }

  /**
   * A SCRAM user created through the AdminClient is described with its mechanisms and
   * iterations (never the password), logs in with it, and cannot once deleted.
   */
  @Test
  void scramUsersAreCreatedDescribedUsedAndDeleted() throws Exception {
    upsert("carol", ScramMechanism.SCRAM_SHA_256, 4096, PASSWORD);
    upsert("carol", ScramMechanism.SCRAM_SHA_512, 8192, PASSWORD);
    UserScramCredentialsDescription d =
        get(admin.describeUserScramCredentials(List.of("carol")).description("carol"));
    Map<ScramMechanism, Integer> mechanisms = new HashMap<>();
    d.credentialInfos().forEach(i -> mechanisms.put(i.mechanism(), i.iterations()));
    assertEquals(Map.of(ScramMechanism.SCRAM_SHA_256, 4096, ScramMechanism.SCRAM_SHA_512, 8192), mechanisms);
    assertTrue(get(admin.describeUserScramCredentials().users()).contains("carol"));

    Properties login = asUser("carol", PASSWORD, "SCRAM-SHA-512");
    login.put("bootstrap.servers", BROKER.saslBootstrap());
    login.put("request.timeout.ms", "10000");
    login.put("default.api.timeout.ms", "15000");
    try (Admin carol = Admin.create(login)) {
      // Authenticated: the cluster answers (she may describe nothing, but the call succeeds).
      assertEquals(1, get(carol.describeCluster().nodes()).size());
    }

    get(
        admin
            .alterUserScramCredentials(
                List.of(
                    new UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256),
                    new UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)))
            .all());
    assertTrue(!get(admin.describeUserScramCredentials().users()).contains("carol"));
    try (Admin carol = Admin.create(login)) {
      ExecutionException e =
          assertThrows(ExecutionException.class, () -> get(carol.describeCluster().nodes()));
      assertInstanceOf(SaslAuthenticationException.class, e.getCause(), e.toString());
    }
  }

  /**
   * An ACL created through the AdminClient is what describeAcls lists and what the broker
   * enforces: a user's write fails with TopicAuthorizationException without it, lands with
   * it, and fails again once deleteAcls removed it.
   */
  @Test
  void aclsAreCreatedDescribedEnforcedAndDeleted() throws Exception {
    String topic = "acl-orders";
    BROKER.createTopic(topic, 1);
    upsert("alice", ScramMechanism.SCRAM_SHA_256, 4096, PASSWORD);

    // Not even allowed to describe the topic: its metadata answers TOPIC_AUTHORIZATION_FAILED.
    try (KafkaProducer<byte[], byte[]> p = producerAs("alice")) {
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> p.send(new ProducerRecord<>(topic, "denied".getBytes())).get(30, TimeUnit.SECONDS));
      assertInstanceOf(TopicAuthorizationException.class, e.getCause(), e.toString());
    }

    AclBinding write =
        new AclBinding(
            new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
            new AccessControlEntry("User:alice", "*", AclOperation.WRITE, AclPermissionType.ALLOW));
    AclBinding prefixed =
        new AclBinding(
            new ResourcePattern(ResourceType.TOPIC, "acl-", PatternType.PREFIXED),
            new AccessControlEntry("User:alice", "*", AclOperation.DESCRIBE, AclPermissionType.ALLOW));
    get(admin.createAcls(List.of(write, prefixed)).all());
    AclBindingFilter alices =
        new AclBindingFilter(
            ResourcePatternFilter.ANY,
            new AccessControlEntryFilter("User:alice", null, AclOperation.ANY, AclPermissionType.ANY));
    Collection<AclBinding> listed = get(admin.describeAcls(alices).values());
    assertEquals(2, listed.size(), listed.toString());
    assertTrue(listed.contains(write) && listed.contains(prefixed), listed.toString());

    try (KafkaProducer<byte[], byte[]> p = producerAs("alice")) {
      // The producer is idempotent by default: that needs IDEMPOTENT_WRITE on the cluster in
      // older Kafkas; since 3.0 WRITE on a topic is enough.
      assertEquals(
          0, p.send(new ProducerRecord<>(topic, "allowed".getBytes())).get(30, TimeUnit.SECONDS).offset());
    }

    Collection<AclBinding> deleted =
        get(admin.deleteAcls(List.of(write.toFilter())).all());
    assertEquals(List.of(write), List.copyOf(deleted));
    assertEquals(List.of(prefixed), List.copyOf(get(admin.describeAcls(alices).values())));
    // Alice may still describe the topic but write nowhere: as in Kafka, her idempotent
    // producer's InitProducerId (WRITE on some topic or IDEMPOTENT_WRITE on the cluster) fails.
    try (KafkaProducer<byte[], byte[]> p = producerAs("alice")) {
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> p.send(new ProducerRecord<>(topic, "denied-again".getBytes())).get(30, TimeUnit.SECONDS));
      assertInstanceOf(ClusterAuthorizationException.class, e.getCause(), e.toString());
    }
  }

  /** Client quotas set through the AdminClient are described back, and removed. */
  @Test
  void clientQuotasAreAlteredDescribedAndRemoved() throws Exception {
    ClientQuotaEntity bob = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, "bob"));
    ClientQuotaEntity bobApp =
        new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, "bob", ClientQuotaEntity.CLIENT_ID, "app"));
    get(
        admin
            .alterClientQuotas(
                List.of(
                    new ClientQuotaAlteration(
                        bob,
                        List.of(
                            new ClientQuotaAlteration.Op("producer_byte_rate", 1048576.0),
                            new ClientQuotaAlteration.Op("consumer_byte_rate", 2097152.0))),
                    new ClientQuotaAlteration(
                        bobApp, List.of(new ClientQuotaAlteration.Op("request_percentage", 50.0)))))
            .all());
    Map<ClientQuotaEntity, Map<String, Double>> all =
        get(admin.describeClientQuotas(ClientQuotaFilter.all()).entities());
    assertEquals(Map.of("producer_byte_rate", 1048576.0, "consumer_byte_rate", 2097152.0), all.get(bob));
    assertEquals(Map.of("request_percentage", 50.0), all.get(bobApp));
    Map<ClientQuotaEntity, Map<String, Double>> onlyBob =
        get(
            admin
                .describeClientQuotas(
                    ClientQuotaFilter.containsOnly(
                        List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "bob"))))
                .entities());
    assertEquals(Map.of(bob, all.get(bob)), onlyBob);

    get(
        admin
            .alterClientQuotas(
                List.of(
                    new ClientQuotaAlteration(
                        bob,
                        List.of(
                            new ClientQuotaAlteration.Op("producer_byte_rate", null),
                            new ClientQuotaAlteration.Op("consumer_byte_rate", null)))))
            .all());
    Map<ClientQuotaEntity, Map<String, Double>> after =
        get(admin.describeClientQuotas(ClientQuotaFilter.all()).entities());
    assertTrue(!after.containsKey(bob), after.toString());
    assertEquals(Map.of("request_percentage", 50.0), after.get(bobApp));
  }
}
