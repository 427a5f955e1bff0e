"""Prometheus metrics for Outcrop."""
