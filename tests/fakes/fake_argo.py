#!/usr/bin/python3
"""The fake Argo Server: fake_kube.py with --mode argo as the default (see README.md).

  fake_argo.py --schemas ../shared/schemas --token-file T --port-file P
"""

import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fake_kube  # noqa: E402

if __name__ == "__main__":
    sys.exit(fake_kube.main(default_mode="argo"))
