"""Deployment: the local stack (real servers without Docker), compose, Kubernetes, Prometheus, Grafana."""
