"""Python client for Probestream: publish reference sets, ONNX checkpoints and live batches to
Kafka (DESIGN.md §3) and read the probe results back."""

from .callback import ProbestreamCallback
from .publisher import CHUNK_BYTES, Publisher
from . import safetensors

__all__ = ["Publisher", "ProbestreamCallback", "CHUNK_BYTES", "safetensors"]
__version__ = "0.1.0"
