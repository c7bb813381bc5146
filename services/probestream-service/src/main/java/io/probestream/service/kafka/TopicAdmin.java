package io.probestream.service.kafka;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.topics.Topics;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;

/** Creates the service's topics when they are missing. Blocking: call from a worker thread. */
public final class TopicAdmin {
  private TopicAdmin() {}

  /** Creates the missing topics and returns their names; fails if the broker does not answer. */
  public static List<String> ensureTopics(ProbestreamConfig config, String bootstrap)
      throws InterruptedException, ExecutionException, TimeoutException {
    Topics topics = config.topicNames();
    String maxMessage = Long.toString(config.limits().maxBatchBytes() + KafkaSettings.SLACK_BYTES);
    try (Admin admin = Admin.create(KafkaSettings.admin(config, bootstrap))) {
      Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
      List<NewTopic> create = new ArrayList<>();
      for (String t : topics.all()) {
        if (!existing.contains(t)) {
          Map<String, String> settings =
              t.equals(topics.state())
                  ? Map.of(
                      TopicConfig.MAX_MESSAGE_BYTES_CONFIG,
                      maxMessage,
                      TopicConfig.CLEANUP_POLICY_CONFIG,
                      TopicConfig.CLEANUP_POLICY_COMPACT)
                  : Map.of(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, maxMessage);
          create.add(
              new NewTopic(t, config.topics().partitions(), config.topics().replication())
                  .configs(settings));
        }
      }
      List<String> created = new ArrayList<>();
      for (NewTopic t : create) {
        try {
          admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
          created.add(t.name());
        } catch (ExecutionException e) {
          if (!(e.getCause() instanceof TopicExistsException)) { // another instance won the race
            throw e;
          }
        }
      }
      return created;
    }
  }
}
