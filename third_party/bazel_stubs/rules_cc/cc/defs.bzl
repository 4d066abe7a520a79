"""Offline stub of @rules_cc//cc:defs.bzl: thin wrappers over the native C++ rules.

Only the symbols that Bazel 4.2.3's own @bazel_tools packages load are defined.
"""

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)
