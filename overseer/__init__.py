"""Overseer: graphs of dependent jobs on Kubernetes."""
