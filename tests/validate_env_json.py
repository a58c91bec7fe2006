#!/usr/bin/env python3
"""Validates tessera-env JSON documents against docs/tessera-env.schema.json (JSON Schema 2020-12).

usage: validate_env_json.py SCHEMA FILE...   exit 0 valid, 1 invalid, 77 (skipped) without python3-jsonschema
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("skipped: the Python package jsonschema (Debian python3-jsonschema) is not installed")
    sys.exit(77)

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    doc = json.load(open(path))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    for e in errors:
        print(f"{path}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")
    bad += bool(errors)
    if not errors:
        print(f"{path}: valid ({doc['schema']})")
sys.exit(1 if bad else 0)
