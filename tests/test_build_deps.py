"""Checks the Bazel BUILD files against the Python imports (pure Python, no Bazel needed).

Bazel runs each py_test in a sandbox holding only the declared deps, so an import that no dep
covers passes under plain pytest and fails only under `bazel test`. This test reads every BUILD
file by running it as Python with stand-ins for the rules, then checks that each project module a
target imports (at the top or inside a function) belongs to that target or to one it depends on,
directly or not; that every project module has a target; and that no deps cycle exists.
"""

import ast
import dataclasses
import glob as glob_lib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_PACKAGES = ('tunas_tf', 'latency', 'launch', 'bench', 'tests')
RULES_WITH_SOURCES = ('py_library', 'py_binary', 'py_test', 'pytest_test')


@dataclasses.dataclass
class Target:
  label: str
  srcs: list
  deps: list


def _label(package: str, dep: str) -> str:
  """'//a/b' -> '//a/b:b', ':x' -> '//package:x'."""
  if dep.startswith(':'):
    return f'//{package}{dep}'
  if ':' not in dep[2:]:
    return f'{dep}:{dep.rsplit("/", 1)[-1]}'
  return dep


def _read_build(package: str) -> list:
  """The source-holding targets of `package`/BUILD."""
  targets = []
  directory = os.path.join(ROOT, package)

  def glob(include, exclude=()):
    found = {os.path.relpath(p, directory) for pattern in include
             for p in glob_lib.glob(os.path.join(directory, pattern))}
    return sorted(found - set(exclude))

  def rule(kind):
    def declare(name, srcs=None, deps=(), **unused_kwargs):
      if srcs is None:
        srcs = [name + '.py'] if kind == 'pytest_test' else []
      files = [os.path.join(package, s) for s in srcs if not s.startswith('//')]
      targets.append(Target(f'//{package}:{name}', files, [_label(package, d) for d in deps]))
    return declare

  namespace = {kind: rule(kind) for kind in RULES_WITH_SOURCES}
  namespace.update(glob=glob, load=lambda *a: None, package=lambda **k: None,
                   exports_files=lambda *a, **k: None, filegroup=lambda **k: None)
  with open(os.path.join(directory, 'BUILD')) as f:
    exec(compile(f.read(), f'{package}/BUILD', 'exec'), namespace)  # pylint: disable=exec-used
  return targets


def _packages() -> list:
  builds = glob_lib.glob(os.path.join(ROOT, '**', 'BUILD'), recursive=True)
  packages = [os.path.relpath(os.path.dirname(b), ROOT) for b in builds]
  return sorted(p for p in packages if p.split(os.sep)[0] in PROJECT_PACKAGES)


@pytest.fixture(scope='module')
def targets() -> dict:
  return {t.label: t for package in _packages() for t in _read_build(package)}


@pytest.fixture(scope='module')
def owner(targets) -> dict:
  """Source file -> the label of the target that holds it."""
  owners = {}
  for target in targets.values():
    for src in target.srcs:
      assert src not in owners, f'{src} is in both {owners[src]} and {target.label}'
      owners[src] = target.label
  return owners


def _imported_files(path: str) -> set:
  """The project files `path` imports: for `from a.b import c`, a/b/c.py if it exists, else a/b."""
  with open(os.path.join(ROOT, path)) as f:
    tree = ast.parse(f.read(), path)
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [[alias.name] for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names += [[f'{node.module}.{alias.name}', node.module] for alias in node.names]
  files = set()
  for candidates in names:
    if candidates[0].split('.')[0] not in PROJECT_PACKAGES:
      continue
    for name in candidates:
      base = name.replace('.', '/')
      found = [p for p in (base + '.py', base + '/__init__.py')
               if os.path.exists(os.path.join(ROOT, p))]
      if found:
        files.add(found[0])
        break
  return files


def _closure(targets: dict, label: str) -> set:
  seen, stack = set(), [label]
  while stack:
    current = stack.pop()
    if current not in seen:
      seen.add(current)
      stack += targets[current].deps if current in targets else []
  return seen


def test_every_dep_names_a_target(targets):
  unknown = [(t.label, d) for t in targets.values() for d in t.deps if d not in targets]
  assert not unknown, f'deps on targets that no BUILD file declares: {unknown}'


def test_every_project_module_has_a_target(owner):
  modules = [os.path.relpath(p, ROOT) for package in PROJECT_PACKAGES if package != 'tests'
             for p in glob_lib.glob(os.path.join(ROOT, package, '**', '*.py'), recursive=True)]
  missing = sorted(m for m in modules if m not in owner)
  assert not missing, f'modules in no py_library (add them to their package BUILD): {missing}'


def test_every_import_is_a_declared_dep(targets, owner):
  missing = []
  for target in targets.values():
    reachable = _closure(targets, target.label)
    for src in target.srcs:
      for imported in sorted(_imported_files(src)):
        if owner.get(imported, target.label) not in reachable:
          missing.append(f'{target.label}: {src} imports {imported} ({owner[imported]})')
  assert not missing, 'imports that no dep covers:\n' + '\n'.join(missing)


def test_deps_have_no_cycle(targets):
  cyclic = [t.label for t in targets.values()
            if any(t.label in _closure(targets, d) for d in t.deps)]
  assert not cyclic, f'targets on a deps cycle: {cyclic}'
