#!/bin/sh
# Stub coverage report generator; see third_party/bazel_stubs/README.md.
echo "bazel coverage is not supported: @remote_coverage_tools is an offline stub" >&2
exit 1
