"""The OTLP/HTTP trace receiver: ``POST /otlp/v1/traces``.

``decode`` turns a request body (protobuf or OTLP/JSON, optionally gzipped) into ``OtlpSpan``s,
``mapping`` turns those into ``telemetry.services.SpanInput``s (GenAI semantic conventions,
OpenInference, OpenLLMetry), ``auth`` checks the API key and ``views`` answers the exporter.
"""
