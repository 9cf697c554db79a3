"""Loopback fakes of the Kubernetes API server and the Argo Server for dagd's tests.

See tests/fakes/README.md. Standard library plus Debian 12's python3-jsonschema only.
"""
