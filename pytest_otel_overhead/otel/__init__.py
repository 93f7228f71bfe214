"""OpenTelemetry plumbing: the SDK pipeline built from settings, exporters, the arm router and the OTLP receiver."""
