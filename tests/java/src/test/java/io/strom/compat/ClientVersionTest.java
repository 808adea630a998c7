package io.strom.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.kafka.common.utils.internals.AppInfoParser;
import org.junit.jupiter.api.Test;

/**
 * The client under test is the kafka-clients version pom.xml names. Needs no broker, so
 * tests/java/run also uses it to resolve Surefire's JUnit provider before the real run.
 */
class ClientVersionTest {
  @Test
  void clientIsTheVersionThePomPins() {
    assertEquals(System.getProperty("kafka.version"), AppInfoParser.getVersion());
  }
}
