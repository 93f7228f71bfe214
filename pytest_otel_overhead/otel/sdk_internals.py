"""What the pipeline reads and calls inside opentelemetry-sdk's batch processor: private to the SDK, so it may change.

Each access checks the shape it expects and, where it is not found, says what is lost
(:func:`~pytest_otel_overhead.compat.degraded`) and carries on without it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export import BatchSpanProcessor

from pytest_otel_overhead.compat import degraded, distribution_version

__all__ = ["batch_core", "export_whole_batches", "span_queue", "whole_batch_schedule"]


def _whole_batches_strategy() -> Any:
    """The SDK's strategy "export while a whole batch is queued" (private, SDK 1.34+), or ``None``."""
    try:
        from opentelemetry.sdk._shared_internal import BatchExportStrategy
    except ImportError:  # older or differently built SDKs: every block exports everything
        return None
    return getattr(BatchExportStrategy, "EXPORT_WHILE_BATCH_EXCEEDS_THRESHOLD", None)


_EXPORT_WHOLE_BATCHES: Any = _whole_batches_strategy()


def batch_core(processor: BatchSpanProcessor) -> Any:
    """The SDK's shared batching core (SDK 1.34+), or ``None`` on SDKs built otherwise.

    Private to the SDK: used only where its shape is as expected, to export whole batches between
    blocks (:meth:`Pipeline.flush`) and to read the queue length.
    """
    core = getattr(processor, "_batch_processor", None)
    if core is None or not hasattr(core, "_queue") or not callable(getattr(core, "_export", None)):
        return None
    return core


def span_queue(processor: BatchSpanProcessor, core: Any) -> Any:
    """The batch processor's queue of sampled spans (a ``deque``), or ``None`` where it is not found.

    SDK 1.34+ keeps it in the batching core; older SDKs kept it on the processor as ``queue``.
    """
    queue = getattr(core, "_queue", None) if core is not None else getattr(processor, "queue", None)
    if queue is None or not callable(getattr(queue, "__len__", None)):
        degraded(
            "pipeline health: peak queue use needs opentelemetry-sdk's BatchSpanProcessor queue, not found in "
            f"{distribution_version('opentelemetry-sdk')}; the queue peak is not reported (drops still are)"
        )
        return None
    return queue


def whole_batch_schedule(core: Any) -> bool:
    """Whether network exporters can export whole batches between blocks, as in production."""
    if core is not None and _EXPORT_WHOLE_BATCHES is not None:
        return True
    degraded(
        "pipeline schedule: exporting whole batches between blocks needs opentelemetry-sdk's batch core "
        f"(1.34+), not found in {distribution_version('opentelemetry-sdk')}; each block exports all its "
        "spans, so network exporters pay one request per block"
    )
    return False


def export_whole_batches(core: Any) -> None:
    """Have the batching ``core`` (from :func:`batch_core`, with :func:`whole_batch_schedule` true) export
    the whole batches it holds, after waiting for an export its worker has in flight."""
    core._export(_EXPORT_WHOLE_BATCHES)
