"""`pytest_test`: a py_test that runs one pytest file of tests/ through bazel_pytest_main.py."""

def pytest_test(
        name,
        srcs = None,
        deps = [],
        data = [],
        pytest_args = ["-m", "not slow"],
        **kwargs):
    """Declares a py_test running the pytest file `<name>.py` (or `srcs`).

    Args:
      name: target name; by default the test file is `<name>.py`.
      srcs: the pytest files to run, if not just `<name>.py`.
      deps: py_library targets the test imports (e.g. "//tunas_tf:errors").
      data: files the test reads at run time.
      pytest_args: extra pytest options. By default tests marked `slow` are deselected, as in
        the README's test command; pass [] to run them too.
      **kwargs: passed to py_test (size, tags, timeout, shard_count, ...).
    """
    if srcs == None:
        srcs = [name + ".py"]

    # Bazel splits each `args` entry with Bourne-shell rules ("not slow" would become two
    # words), so quote every option.
    quoted_args = ["'%s'" % arg.replace("'", "'\\''") for arg in pytest_args]
    native.py_test(
        name = name,
        srcs = srcs + ["//tests:bazel_pytest_main.py"],
        main = "//tests:bazel_pytest_main.py",
        args = quoted_args + ["$(rootpath %s)" % src for src in srcs],
        deps = deps + ["//tests:test_support"],
        data = data + ["//:pytest_config"],
        python_version = "PY3",
        srcs_version = "PY3",
        **kwargs
    )
