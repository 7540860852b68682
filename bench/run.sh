#!/usr/bin/env bash
# The benchmark command: `bash bench/run.sh [--quick] [--backends memcached,redis,pool]`.
# Installs what is missing (.venv-bench with the peers, MariaDB, memcached,
# Redis), then runs bench/suite.py: private cache servers on free loopback
# ports, the database named by CACHELAYER_DB (default: cachelayer_bench on the
# local MariaDB). Prints the tables and writes bench-output/results.{json,md}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh

ensure_venv .venv-bench bench/requirements.txt
ensure_services

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv-bench/bin/python -m bench.suite "$@"
