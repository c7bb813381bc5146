package io.probestream.testkit;

import io.probestream.embedded.EmbeddedKafka;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ExtensionContext.Namespace;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Resolves {@link KafkaTestCluster} parameters for {@link ProbestreamIT} tests. The first one
 * starts a single {@link EmbeddedKafka} for the whole JVM, which JUnit closes when the run ends;
 * each test method gets its own topic prefix, and a class gets one in {@code @BeforeAll}. Holds no
 * state itself: the broker and the prefixes live in JUnit's thread-safe stores.
 */
public final class ProbestreamKafkaExtension implements ParameterResolver {
  private static final Namespace NAMESPACE = Namespace.create(ProbestreamKafkaExtension.class);

  /**
   * Resolves constructor parameters in the test method's context, so that a per-method instance
   * shares its prefix with the test it runs; a per-class instance still gets the class's prefix.
   */
  @Override
  public ExtensionContextScope getTestInstantiationExtensionContextScope(
      ExtensionContext rootContext) {
    return ExtensionContextScope.TEST_METHOD;
  }

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == KafkaTestCluster.class;
  }

  @Override
  public KafkaTestCluster resolveParameter(ParameterContext parameter, ExtensionContext context) {
    SharedBroker broker =
        context
            .getRoot()
            .getStore(NAMESPACE)
            .getOrComputeIfAbsent(
                SharedBroker.class, type -> SharedBroker.start(), SharedBroker.class);
    // Keyed by unique id: a plain key would be found in the parent class's store, and every test
    // method would then inherit the prefix that @BeforeAll got.
    return context
        .getStore(NAMESPACE)
        .getOrComputeIfAbsent(
            "cluster:" + context.getUniqueId(), id -> broker.nextCluster(), KafkaTestCluster.class);
  }

  /** The JVM's broker and its prefix counter; JUnit closes it with the root store. */
  private static final class SharedBroker implements AutoCloseable {
    private final EmbeddedKafka kafka;
    private final AtomicLong prefixes = new AtomicLong();

    private SharedBroker(EmbeddedKafka kafka) {
      this.kafka = kafka;
    }

    static SharedBroker start() {
      try {
        return new SharedBroker(EmbeddedKafka.start());
      } catch (IOException | RuntimeException e) {
        throw new ParameterResolutionException("could not start the embedded Kafka broker", e);
      }
    }

    KafkaTestCluster nextCluster() {
      return new KafkaTestCluster(
          kafka.bootstrapServers(), "it-" + prefixes.incrementAndGet() + "-");
    }

    @Override
    public void close() throws IOException {
      kafka.close();
    }
  }
}
