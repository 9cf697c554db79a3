#!/usr/bin/python3
"""validate_schema.py SCHEMA.json OBJECT.json: exit 0 if OBJECT is valid under SCHEMA, else print
every violation (path and message) and exit 1. Uses Debian's python3-jsonschema."""
import json
import sys
import warnings

import jsonschema


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    with open(sys.argv[2]) as f:
        instance = json.load(f)
    # The Kubernetes schemas name a $schema URI jsonschema does not know; it then uses its latest
    # draft, which is what they are written for.
    warnings.simplefilter("ignore", DeprecationWarning)
    validator_class = jsonschema.validators.validator_for(schema)
    # A schema that is a oneOf over kinds (Argo's): check against the branch of the object's
    # kind, so that errors name the field instead of "not valid under any of the given schemas".
    kind = instance.get("kind") if isinstance(instance, dict) else None
    for branch in schema.get("oneOf", []):
        ref = branch.get("$ref", "")
        if kind and ref.endswith("." + kind):
            schema = {"$ref": ref, "definitions": schema.get("definitions", {})}
            break
    errors = sorted(validator_class(schema).iter_errors(instance), key=lambda e: list(e.path))
    for error in errors:
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        print(f"{sys.argv[2]}: {path}: {error.message[:300]}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
