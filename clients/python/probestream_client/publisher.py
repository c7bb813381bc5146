"""Publishes reference sets, checkpoints and live batches to Probestream over Kafka, and reads
the probe results back (DESIGN.md §3: CloudEvents binary-mode headers, every record keyed by the
experiment)."""

import datetime
import hashlib
import io
import json
import math
import time
import uuid

import numpy as np

from . import safetensors

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
except ImportError as e:  # pragma: no cover - reported to the caller
    raise ImportError(
        "probestream_client needs confluent_kafka: apt-get install python3-confluent-kafka "
        "(or pip install confluent-kafka)"
    ) from e

CHUNK_BYTES = 512 * 1024
TYPE_CHECKPOINT = "probestream.checkpoint.v1"
TYPE_BLOB = "probestream.blob.v1"
TYPE_BATCH = "probestream.batch.v1"
SPLITS = ("reference", "train", "eval")


def _numpy(x, dtype):
    """A numpy array of dtype from a numpy array, a torch tensor or a list."""
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(x), dtype=dtype)


def _check_id(name, value):
    if not isinstance(value, str) or not value.strip() or "|" in value or len(value) > 200:
        raise ValueError(f"{name} {value!r}: must be a non-blank string without '|', at most 200 characters")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Publisher:
    """A Probestream producer for one experiment and run.

    ``Publisher("127.0.0.1:9192", "mnist-mlp", "seed-1")`` then ``reference_set(X, y)`` once,
    ``checkpoint(step, model, layers=..., logits=...)`` as training goes, ``results()`` to read
    the probes back, ``close()`` at the end (or use it as a context manager).
    """

    def __init__(
        self,
        bootstrap_servers,
        experiment,
        run,
        topic_prefix="probestream.",
        source=None,
        chunk_bytes=CHUNK_BYTES,
        producer_config=None,
    ):
        _check_id("experiment", experiment)
        _check_id("run", run)
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be at least 1")
        self.bootstrap_servers = bootstrap_servers
        self.experiment = experiment
        self.run = run
        self.topic_prefix = topic_prefix
        self.source = source or f"probestream-python/{experiment}/{run}"
        self.chunk_bytes = chunk_bytes
        self.input_name = "input"
        self._sample = None  # the first rows of the reference set, for torch exports
        self._errors = []
        config = {
            "bootstrap.servers": bootstrap_servers,
            "message.max.bytes": 65 * 1024 * 1024,
            "enable.idempotence": True,
            "linger.ms": 5,
        }
        config.update(producer_config or {})
        self._producer = Producer(config)
        self._consumer = None

    # ------------------------------------------------------------------ topics and records

    def topic(self, name):
        """The full topic name, e.g. topic("results") -> "probestream.results"."""
        return self.topic_prefix + name

    def _headers(self, ce_type, content_type, extra):
        h = [
            ("ce_specversion", "1.0"),
            ("ce_id", str(uuid.uuid4())),
            ("ce_source", self.source),
            ("ce_type", ce_type),
            ("ce_time", _now()),
            ("content-type", content_type),
        ]
        h += [(k, str(v)) for k, v in extra]
        return [(k, v.encode("utf-8")) for k, v in h]

    def _delivered(self, err, msg):
        if err is not None:
            self._errors.append(err)

    def _send(self, topic, value, ce_type, content_type, extra=()):
        headers = self._headers(ce_type, content_type, extra)
        while True:
            try:
                self._producer.produce(
                    self.topic(topic),
                    key=self.experiment.encode("utf-8"),
                    value=value,
                    headers=headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # local queue full: let it drain
                self._producer.poll(0.1)
        self._producer.poll(0)

    # ------------------------------------------------------------------ data

    def _batch_bytes(self, X, y):
        x = _numpy(X, np.float32)
        labels = _numpy(y, np.int64).reshape(-1)
        if x.ndim < 1 or x.shape[0] != labels.shape[0]:
            raise ValueError(f"X has {x.shape[0] if x.ndim else 0} rows but y has {labels.shape[0]} labels")
        if not np.all(np.isfinite(x)):
            raise ValueError("X holds NaN or infinite values")
        return safetensors.dumps({self.input_name: x, "labels": labels})

    def reference_set(self, X, y, batch_size=1000, input_name=None):
        """Publishes the experiment's reference set (once per experiment: it is immutable) as
        float32 ``input`` + int64 ``labels`` safetensors batches of ``batch_size`` rows, the last
        with ``ce_final=true``. Returns the list of batch payloads sent."""
        if input_name:
            self.input_name = input_name
        x = _numpy(X, np.float32)
        labels = _numpy(y, np.int64).reshape(-1)
        if x.shape[0] == 0 or x.shape[0] != labels.shape[0]:
            raise ValueError(f"reference set: {x.shape[0]} rows and {labels.shape[0]} labels")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._sample = x[: min(2, x.shape[0])]
        starts = list(range(0, x.shape[0], batch_size))
        payloads = []
        for i, s in enumerate(starts):
            value = self._batch_bytes(x[s : s + batch_size], labels[s : s + batch_size])
            extra = [("ce_experiment", self.experiment), ("ce_split", "reference"), ("ce_batchindex", i)]
            if i == len(starts) - 1:
                extra.append(("ce_final", "true"))
            self._send("batches", value, TYPE_BATCH, "application/octet-stream", extra)
            payloads.append(value)
        return payloads

    def batch(self, X, y, split, step, run=None, index=0):
        """Publishes a live ``train`` or ``eval`` batch seen at ``step`` (``ce_run``, ``ce_step``)."""
        if split not in ("train", "eval"):
            raise ValueError(f"split {split!r}: expected train or eval (use reference_set for the reference set)")
        if int(step) < 0:
            raise ValueError("step must be non-negative")
        run = run or self.run
        _check_id("run", run)
        extra = [
            ("ce_experiment", self.experiment),
            ("ce_split", split),
            ("ce_batchindex", int(index)),
            ("ce_run", run),
            ("ce_step", int(step)),
        ]
        self._send("batches", self._batch_bytes(X, y), TYPE_BATCH, "application/octet-stream", extra)

    # ------------------------------------------------------------------ models

    def blob(self, data):
        """Publishes model bytes in chunks on the blobs topic; returns the manifest's
        ``{"sha256", "size", "chunks"}``."""
        data = bytes(data)
        if not data:
            raise ValueError("the model is empty")
        sha = hashlib.sha256(data).hexdigest()
        count = math.ceil(len(data) / self.chunk_bytes)
        for i in range(count):
            chunk = data[i * self.chunk_bytes : (i + 1) * self.chunk_bytes]
            extra = [
                ("ce_blobsha256", sha),
                ("ce_blobindex", i),
                ("ce_blobcount", count),
                ("ce_blobsize", len(data)),
            ]
            self._send("blobs", chunk, TYPE_BLOB, "application/octet-stream", extra)
        return {"sha256": sha, "size": len(data), "chunks": count}

    def export_onnx(self, model, layers, logits, input_name="input", sample_input=None, output_names=None):
        """Exports a torch.nn.Module to ONNX bytes (eval mode, dynamic batch axis).

        The module's forward must return the logits alone, or a tuple ``(*layer tensors, logits)``
        in the order of ``layers``' tensor names; those become the graph outputs' names (pass
        ``output_names`` to name them otherwise). ``sample_input`` defaults to the first rows of
        the reference set."""
        import torch

        if sample_input is None:
            if self._sample is None:
                raise ValueError("sample_input is needed to export a torch model before reference_set()")
            sample_input = torch.from_numpy(self._sample)
        elif not isinstance(sample_input, torch.Tensor):
            sample_input = torch.as_tensor(np.asarray(sample_input, dtype=np.float32))
        if output_names is None:
            with torch.no_grad():
                was_training = model.training
                model.eval()
                out = model(sample_input)
                model.train(was_training)
            tensors = list(_layer_map(layers).values())
            output_names = tensors + [logits] if isinstance(out, (tuple, list)) else [logits]
            if isinstance(out, (tuple, list)) and len(out) != len(output_names):
                raise ValueError(
                    f"forward returned {len(out)} tensors; expected {len(output_names)}: {output_names}"
                )
        buf = io.BytesIO()
        was_training = model.training
        model.eval()
        try:
            torch.onnx.export(
                model,
                (sample_input,),
                buf,
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes={n: {0: "batch"} for n in [input_name, *output_names]},
                opset_version=13,
                do_constant_folding=True,
            )
        finally:
            model.train(was_training)
        return buf.getvalue()

    def checkpoint(
        self,
        step,
        model,
        layers=None,
        logits="logits",
        classifier_weight=None,
        classes=None,
        metrics=None,
        input_name="input",
        sample_input=None,
        epoch=None,
        run=None,
    ):
        """Publishes one checkpoint: the model's blob chunks, then its manifest.

        ``model`` is ONNX bytes or a torch.nn.Module (see export_onnx). ``layers`` maps layer name
        -> graph tensor name (a list means name = tensor; "auto" lets the service pick).
        ``classes`` defaults to the logits' width. Returns ``(manifest dict, model bytes)``."""
        if isinstance(model, (bytes, bytearray, memoryview)):
            onnx_bytes = bytes(model)
        else:
            onnx_bytes = self.export_onnx(model, layers, logits, input_name, sample_input)
        if classes is None:
            classes = _logits_width(onnx_bytes, logits)
        run = run or self.run
        _check_id("run", run)
        manifest = {
            "experiment": self.experiment,
            "run": run,
            "step": int(step),
            "model": {"blob": self.blob(onnx_bytes)},
            "input": input_name,
            "layers": layers if layers == "auto" else _layer_map(layers),
            "logits": logits,
            "classes": int(classes),
        }
        if epoch is not None:
            manifest["epoch"] = int(epoch)
        if metrics:
            clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
            if clean:
                manifest["metrics"] = clean
        if classifier_weight:
            manifest["classifier_weight"] = classifier_weight
        value = json.dumps(manifest, separators=(",", ":")).encode("utf-8")
        self._send("checkpoints", value, TYPE_CHECKPOINT, "application/json")
        return manifest, onnx_bytes

    # ------------------------------------------------------------------ results

    def results(self, timeout=30.0, expected=None, probe=None):
        """Reads result JSON objects of this experiment from the results topic (all of them from
        the start on the first call, then the new ones). Returns when ``expected`` results (of
        ``probe``, if given) have arrived, or after ``timeout`` seconds with what has."""
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "group.id": f"probestream-python-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
            self._consumer.subscribe([self.topic("results")])
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (expected is None or len(out) < expected):
            msg = self._consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
            if msg is None:
                continue
            if msg.error():
                code = msg.error().code()
                if msg.error().retriable() or code in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise KafkaException(msg.error())
            if msg.key() != self.experiment.encode("utf-8"):
                continue
            result = json.loads(msg.value())
            if probe is None or result.get("probe") == probe:
                out.append(result)
        return out

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout=60.0):
        """Waits until every record is acknowledged; raises if any delivery failed."""
        left = self._producer.flush(timeout)
        if left:
            raise RuntimeError(f"{left} record(s) not delivered within {timeout} s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise RuntimeError(f"delivery failed: {errors[0]} (and {len(errors) - 1} more)")

    def close(self):
        try:
            self.flush()
        finally:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _layer_map(layers):
    if layers is None:
        return {}
    if isinstance(layers, str):
        return {layers: layers}
    if isinstance(layers, dict):
        return dict(layers)
    return {name: name for name in layers}


def _logits_width(onnx_bytes, logits):
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    for value in list(graph.output) + list(graph.value_info):
        if value.name == logits:
            dims = value.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value"):
                return dims[-1].dim_value
    raise ValueError(f"cannot tell the number of classes from tensor {logits!r}; pass classes=")
