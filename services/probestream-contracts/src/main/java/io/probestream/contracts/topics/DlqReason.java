package io.probestream.contracts.topics;

import java.util.Locale;

/**
 * Why a record went to the dead-letter topic; {@link #code()} is the {@code dlq.error.reason}
 * header and the {@code reason} label of {@code probestream_dlq_records_total}.
 */
public enum DlqReason {
  /** A required CloudEvents or Probestream header is absent. */
  MISSING_HEADER,
  /** A header is present but its value is not valid (wrong ce_type, not a number, …). */
  INVALID_HEADER,
  /** The record key is not the experiment its payload names. */
  KEY_MISMATCH,
  /** The value is not JSON. */
  INVALID_JSON,
  /** The manifest is JSON but breaks the manifest contract. */
  INVALID_MANIFEST,
  /** The value is not a valid safetensors payload, or lacks the tensors a batch needs. */
  MALFORMED_SAFETENSORS,
  /** A tensor has an element type the contract does not allow here. */
  WRONG_DTYPE,
  /** An input tensor holds NaN or ±Inf (features may; inputs may not). */
  NONFINITE_INPUT,
  /** A payload is over a configured size limit. */
  PAYLOAD_TOO_LARGE,
  /** A reference batch contradicts one already held, or comes after the final one. */
  REFERENCE_CONFLICT,
  /** The reference set would exceed its sample limit. */
  REFERENCE_SET_TOO_LARGE,
  /** A checkpoint waited past its bound for its reference set. */
  REFERENCE_SET_INCOMPLETE,
  /** A blob chunk disagrees with earlier chunks of the same blob. */
  BLOB_CONFLICT,
  /** The assembled blob's sha256 is not the one announced. */
  BLOB_SHA_MISMATCH,
  /** The assembled blob's size is not the one announced. */
  BLOB_SIZE_MISMATCH,
  /** A checkpoint waited past its bound for its model blob. */
  BLOB_INCOMPLETE,
  /** A model URI that is not allowed (scheme, root, host). */
  URI_NOT_ALLOWED,
  /** ONNX Runtime cannot load the model. */
  MODEL_UNLOADABLE,
  /** A tensor the manifest names is not in the model or the data. */
  UNKNOWN_TENSOR,
  /** The data's input tensor does not match the model's input. */
  INPUT_MISMATCH,
  /** A model output has a shape the probes cannot use. */
  SHAPE_MISMATCH,
  /** An output tensor of a type the probes cannot use. */
  UNSUPPORTED_TENSOR,
  /** A probed layer is wider than probestream.limits.max-feature-width. */
  FEATURE_TOO_WIDE,
  /** The probe state an experiment needs exceeds probestream.limits.max-state-bytes. */
  STATE_BUDGET_EXCEEDED,
  /** A live batch waited past its bound for a checkpoint of its run. */
  CHECKPOINT_MISSING,
  /** A label outside 0..classes−1. */
  LABEL_OUT_OF_RANGE,
  /** ONNX Runtime failed while running a batch. */
  INFERENCE_FAILED,
  /** A transient failure outlived its retries. */
  RETRIES_EXHAUSTED;

  /** The lower-case code written in headers and metric labels. */
  public String code() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The reason of a code, or an error naming the known codes. */
  public static DlqReason of(String code) {
    return valueOf(code.toUpperCase(Locale.ROOT));
  }
}
