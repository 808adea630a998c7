package io.strom.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.kafka.common.utils.internals.AppInfoParser;
import org.junit.jupiter.api.Test;

/**
 * The frameworks under test are the Kafka version pom.xml names. Needs no broker, so
 * tests/streams/run also uses it to resolve the jars and Surefire's JUnit provider first.
 */
class VersionTest {
  @Test
  void kafkaIsTheVersionThePomPins() {
    assertEquals(System.getProperty("kafka.version"), AppInfoParser.getVersion());
  }
}
