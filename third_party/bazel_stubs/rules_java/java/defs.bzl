"""Offline stub of @rules_java//java:defs.bzl: thin wrappers over the native Java rules.

Only the symbols that Bazel 4.2.3's own @bazel_tools packages load are defined.
"""

def java_import(**kwargs):
    native.java_import(**kwargs)

def java_runtime(**kwargs):
    native.java_runtime(**kwargs)

def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)
