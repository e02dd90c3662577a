#!/usr/bin/env bash
# mypy --strict over the installed layout: the top-level folders are the packages
# loraledger.<folder> (setuptools package-dir), which mypy cannot see through an editable
# install, so lay them out with symlinks in .typecheck/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .typecheck && mkdir -p .typecheck/loraledger
for f in loraledger/*; do ln -s "../../$f" .typecheck/loraledger/; done
for p in registry trainer harness policies dashboard; do ln -s "../../$p" ".typecheck/loraledger/$p"; done
exec "${PYTHON:-.venv/bin/python}" -m mypy .typecheck/loraledger
