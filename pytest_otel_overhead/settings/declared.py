"""The settings' names and help texts as pytest declares them in every run.

Generated from the key registry (:mod:`pytest_otel_overhead.settings.keys`) by
``python -m pytest_otel_overhead.settings.keys``; a test checks that the two agree. Declaring the
options from literals spares every pytest run building the registry, its defaults and its parsers.
"""

KEY_HELP: dict[str, str] = {
    "budget": "budget of the gate metric (cpu unless metric=wall), e.g. 5% (default)",
    "cpu": "CPU-time budget (all threads), e.g. 5% or 50us per call",
    "wall": "wall-time budget, e.g. 5% or 50us per call",
    "latency_p50": "median latency budget, e.g. 5% or 50ms",
    "latency_p95": "95th-percentile latency budget, e.g. 10% or 50ms",
    "latency_p99": "99th-percentile latency budget, e.g. 10% or 50ms",
    "heap": "peak-heap budget, e.g. 10% or 2MiB",
    "metric": "metric that 'budget' applies to: cpu (default) or wall",
    "sampler": "sampler: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, per_operation, rate_limiting, load_adaptive (default parentbased_always_on)",
    "sample_rate": "sampling ratio 0..1; alone it selects parentbased_traceidratio",
    "strategies": "per-operation sampling rules: a JSON (or YAML) file, inline JSON, or a mapping in a marker; alone it selects sampler per_operation",
    "max_traces_per_second": "at most this many traces per second; alone it selects sampler rate_limiting, with per_operation it caps the rules",
    "load_thresholds": "load_adaptive rates by process load, LOAD:RATE pairs then the rate below them (default 80%:0.05,60%:0.1,0.2); alone it selects sampler load_adaptive",
    "load_refresh": "how often load_adaptive re-reads the process load; bare numbers are ms (default 1000)",
    "profile": "named pipeline settings: high, medium, low (the tuning guide's), development, staging, production, high-traffic; settings given alongside win",
    "processor": "span processor: batch (default) or simple",
    "batch_size": "max export batch size (default 512)",
    "schedule_delay": "batch schedule delay, e.g. 5s or 500ms; bare numbers are ms (default 5000)",
    "queue_size": "max span queue size (default 2048)",
    "export_timeout": "export timeout; bare numbers are ms (default 30000)",
    "exporter": "span exporter: none (default), memory, otlp (alias otlp-http; needs the [otlp] extra) or module:factory returning a SpanExporter",
    "endpoint": "OTLP/HTTP endpoint of your own collector, e.g. http://localhost:4318; alone it selects exporter otlp (default: a receiver on 127.0.0.1 that the plugin starts)",
    "compression": "OTLP compression: none (default), gzip or deflate",
    "backend_latency": "delay of the embedded OTLP receiver before each answer, e.g. 50ms (default 0)",
    "backend_error_rate": "share of requests the embedded OTLP receiver answers 503, e.g. 0.1 (default 0)",
    "metric_interval": "metric export interval, counted in instrumented time; bare numbers are ms (default 60000)",
    "instrument": "instrumentors applied in the instrumented arm only, module:Class, comma-separated (e.g. opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor)",
    "max_dropped": "fail the test when the diagnostic round loses more spans than this (default: report only)",
    "mode": "what to measure: time (CPU and wall time, default) or instructions (counted under valgrind)",
    "max_time": "cap on measuring time per test, e.g. 30 or 2min (default 30 s)",
    "confidence": "how sure every interval and verdict is, e.g. 99% or 0.99 (default 95%): higher errs less often near the budget and leaves more tests undecided",
    "processes": "fresh processes that time mode spreads each measurement over, one after another: auto or a number, exactly that many (default auto: this process, and fresh ones added where the between-process term keeps a budget open, a comparison is undecided, or a saved run has fewer than 3)",
    "calibration": "calibration file with the between-process and load terms measured on this runner (python -m pytest_otel_overhead calibrate; default: otel-overhead-calibration.json in the root folder when it exists, else the built-in terms)",
    "inconclusive": "what an undecided budget does to the test: fail, warn (default) or pass",
    "no_telemetry": "what a measurement whose instrumented arm recorded no spans and no metrics does to the test: warn, fail (default) or ignore",
    "failed_exports": "what a measurement in which every export failed (nothing reached the backend: a collector down, refusing or never answering) does to the test: fail (default), warn or ignore",
}
"""Every setting's help, by name, in the order ``--help`` lists them."""
