"""OpenTelemetry traces for Outcrop."""
