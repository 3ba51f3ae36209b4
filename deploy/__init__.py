"""Deployment: local stack (real servers, no Docker), compose, Kubernetes, Prometheus, Grafana."""
