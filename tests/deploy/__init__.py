"""Tests of deploy/: Prometheus, Grafana, compose and Kubernetes files."""
