package io.probestream.testkit;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Marks an integration test that runs against the JVM's one embedded Kafka broker: declare a {@link
 * KafkaTestCluster} parameter on the constructor, a lifecycle method or a test method to get the
 * broker's address and a topic prefix of its own. Tagged {@code it}.
 */
@Target({ElementType.TYPE, ElementType.ANNOTATION_TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@ExtendWith(ProbestreamKafkaExtension.class)
@Tag("it")
public @interface ProbestreamIT {}
