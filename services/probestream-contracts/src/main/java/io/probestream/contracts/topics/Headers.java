package io.probestream.contracts.topics;

/**
 * Header names and CloudEvents types (Kafka protocol binding, binary mode) of every topic, and
 * Probestream's own {@code dlq.*} headers. The only place these strings appear.
 */
public final class Headers {
  private Headers() {}

  // Required CloudEvents attributes.
  public static final String SPECVERSION = "ce_specversion";
  public static final String ID = "ce_id";
  public static final String SOURCE = "ce_source";
  public static final String TYPE = "ce_type";
  // Optional CloudEvents attributes.
  public static final String TIME = "ce_time";
  public static final String CONTENT_TYPE = "content-type";
  // Extension attributes.
  public static final String EXPERIMENT = "ce_experiment";
  public static final String SPLIT = "ce_split";
  public static final String BATCH_INDEX = "ce_batchindex";
  public static final String RUN = "ce_run";
  public static final String STEP = "ce_step";
  public static final String FINAL = "ce_final";
  public static final String BLOB_SHA256 = "ce_blobsha256";
  public static final String BLOB_INDEX = "ce_blobindex";
  public static final String BLOB_COUNT = "ce_blobcount";
  public static final String BLOB_SIZE = "ce_blobsize";
  // Dead-letter headers.
  public static final String DLQ_REASON = "dlq.error.reason";
  public static final String DLQ_CLASS = "dlq.error.class";
  public static final String DLQ_MESSAGE = "dlq.error.message";
  public static final String DLQ_SOURCE_TOPIC = "dlq.source.topic";
  public static final String DLQ_SOURCE_PARTITION = "dlq.source.partition";
  public static final String DLQ_SOURCE_OFFSET = "dlq.source.offset";

  public static final String SPEC_VERSION = "1.0";
  public static final String TYPE_CHECKPOINT = "probestream.checkpoint.v1";

  /** On the checkpoints topic, keyed by experiment: remove the experiment (state, results). */
  public static final String TYPE_COMMAND_DELETE = "probestream.command.delete.v1";

  /** On the checkpoints topic, keyed by experiment: evaluate its checkpoints again, in order. */
  public static final String TYPE_COMMAND_REPROCESS = "probestream.command.reprocess.v1";

  public static final String TYPE_BLOB = "probestream.blob.v1";
  public static final String TYPE_BATCH = "probestream.batch.v1";
  public static final String TYPE_RESULT = "probestream.result.v1";
  public static final String JSON = "application/json";
  public static final String SAFETENSORS = "application/octet-stream";

  public static final String SPLIT_REFERENCE = "reference";
  public static final String SPLIT_TRAIN = "train";
  public static final String SPLIT_EVAL = "eval";
}
