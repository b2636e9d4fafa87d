#!/usr/bin/env bash
# Run the official Array API test suite (data-apis/array-api-tests) against polygrad.ops on
# one backend, or (--raw) against that backend's own namespace for the baseline.
#
#   git clone --recurse-submodules https://github.com/data-apis/array-api-tests /tmp/array-api-tests
#   git -C /tmp/array-api-tests checkout 55fcc60179efa2680ddd6cd926ddf17b83530e2b
#   git -C /tmp/array-api-tests submodule update       # the spec, data-apis/array-api
#   pip install hypothesis ndindex
#   ARRAY_API_TESTS_DIR=/tmp/array-api-tests array-api-tests/run.sh numpy|torch|strict [--raw] [pytest args]
#
# The suite is kept outside this repository (it is not on PyPI; never copy it in). Failures
# that remain are listed, each with its reason, in array-api-tests/xfails-<backend>.txt;
# docs/array-api.md has the counts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
backend=${1:?usage: run.sh numpy|torch|strict [--raw] [pytest args]}
shift
raw=0
if [[ "${1:-}" == "--raw" ]]; then raw=1; shift; fi
suite=${ARRAY_API_TESTS_DIR:?set ARRAY_API_TESTS_DIR to a checkout of data-apis/array-api-tests}

case $backend in
  numpy) module=numpy ;;
  torch) module=array_api_compat.torch
         # torch has no arithmetic on uint16/32/64; the torch backend does not declare them
         export ARRAY_API_TESTS_SKIP_DTYPES=uint16,uint32,uint64 ;;
  strict) module=array_api_strict ;;
  *) echo "unknown backend $backend (numpy, torch or strict)" >&2; exit 2 ;;
esac
if [[ $raw == 0 ]]; then
  module=polygrad.ops
  export POLYGRAD_BACKEND=$backend
  set -- "--xfails-file=$here/xfails-$backend.txt" "$@"
fi
export ARRAY_API_TESTS_MODULE=$module ARRAY_API_TESTS_VERSION=2024.12
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
cd "$suite"
exec python -m pytest -c pytest.ini --rootdir=. -p no:cacheprovider -q -rfE --max-examples=20 --disable-deadline \
  --hypothesis-seed=0 "$@" array_api_tests
