"""Validation of received objects against ../shared/schemas/*.schema.json.

The Kubernetes schemas (yannh/openapi2jsonschema "standalone-strict": every $ref inlined,
additionalProperties:false, optional fields typed [T, "null"]) declare "$schema":
"http://json-schema.org/schema#", which names no particular draft; they only use keywords that
mean the same in drafts 4 to 2020-12, and are checked with Draft7Validator. The Argo schema is
draft 2020-12 with `definitions` and a top-level `oneOf` over five kinds; a Workflow is checked
against its `io.argoproj.workflow.v1alpha1.Workflow` definition resolved inside that document
(equivalent to the oneOf whenever kind is "Workflow", and the only sensible check when the Argo
Server's request leaves kind out, which the real server accepts).

One deliberate change, undone by --literal-argo-schema: Argo's generator writes
`io.k8s.apimachinery.pkg.util.intstr.IntOrString` as {"type": "string"}, so `retryStrategy.limit:
2`, `backoff.factor: 2` or a template's `activeDeadlineSeconds: 10` would be violations although
Argo accepts them (and 9 of Argo's own 180 example Workflows use such integers). The fake lets
IntOrString be a string or an integer, as its name and Kubernetes' own schemas say.

No format checker is enabled (the schemas' formats are int32/int64/byte/date-time annotations).
"""

import json
import os
import threading

import jsonschema

ARGO_WORKFLOW_DEF = "io.argoproj.workflow.v1alpha1.Workflow"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def _path(error):
    out = ""
    for part in error.absolute_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


class Schemas:
    def __init__(self, directory, literal_argo=False):
        self.directory = directory
        self.literal_argo = literal_argo
        self._validators = {}
        self._lock = threading.Lock()
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"schema directory {directory} does not exist")

    def _validator(self, name):
        with self._lock:
            v = self._validators.get(name)
            if v is not None:
                return v
            if name == "argo-workflow":
                with open(os.path.join(self.directory, "argo-workflow.schema.json")) as f:
                    doc = json.load(f)
                if not self.literal_argo:
                    doc["definitions"][INT_OR_STRING] = {"type": ["string", "integer"]}
                resolver = jsonschema.RefResolver.from_schema(doc)
                v = jsonschema.Draft202012Validator(
                    {"$ref": "#/definitions/" + ARGO_WORKFLOW_DEF}, resolver=resolver)
            else:
                with open(os.path.join(self.directory, name + ".schema.json")) as f:
                    doc = json.load(f)
                cls = jsonschema.validators.validator_for(doc, default=jsonschema.Draft7Validator)
                v = cls(doc)
            self._validators[name] = v
            return v

    def errors(self, name, obj):
        """Human-readable schema errors ("path: message"), empty if obj is valid."""
        v = self._validator(name)
        out = []
        for err in sorted(v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            msg = err.message
            if err.context:  # oneOf/anyOf: say what the closest branch wanted
                best = jsonschema.exceptions.best_match(err.context)
                msg += f" (closest: {_path(best)}: {best.message})"
            if len(msg) > 600:
                msg = msg[:600] + "…"
            out.append(f"{_path(err)}: {msg}")
        return out

    def preload(self, names):
        for n in names:
            self._validator(n)
