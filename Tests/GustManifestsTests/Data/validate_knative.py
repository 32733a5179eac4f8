#!/usr/bin/env python3
"""Checks every serving.knative.dev/v1 Service in a YAML stream (stdin) against
the openAPIV3Schema of Knative's CRD (argv[1]), as strictly as an API server
with field validation Strict: an object with declared properties rejects keys
it does not declare, unless the schema preserves unknown fields there.

Prints one line per error and exits 1 if there was any; exits 2 if the stream
had no Knative Service at all (a test that checks nothing must not pass)."""
import sys

import jsonschema
import yaml


def strict(schema):
    """additionalProperties: false wherever the schema lists properties and keeps no unknown fields."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    with open(sys.argv[1]) as crd_file:
        crd = yaml.safe_load(crd_file)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    checked, errors = 0, 0
    for document in yaml.safe_load_all(sys.stdin):
        if not document or document.get("apiVersion") != "serving.knative.dev/v1" or document.get("kind") != "Service":
            continue
        checked += 1
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            errors += 1
            path = "/".join(str(p) for p in error.path)
            print(f"{document.get('metadata', {}).get('name')}: {path}: {error.message}")
    if checked == 0:
        print("no serving.knative.dev/v1 Service in the input")
        sys.exit(2)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
