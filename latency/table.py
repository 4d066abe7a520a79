"""Latency-table files: one JSON file per (device, runtime, threads, dtype, space, image size).

Layout (schema version 1):

  {"schema_version": 1,
   "header": {"search_space", "image_size", "num_classes", "granularity", "dtype", "threads",
              "device", "runtime", "xnnpack", "cpu_model", "libraries": {...},
              "protocol": {"warmup", "min_runs", "min_seconds", "statistic"}, "affinity",
              "created", "drift": {...}, ...},
   "entries": {KEY: {"median_ms", "p10_ms", "p90_ms", "min_ms", "n"}},
   "calibration": null | {"archs": [{"arch", "indices", "measured_ms"}], "a", "b", ...}}

Files are written atomically (temp file + rename), so an interrupted build leaves the previous
complete file. Every problem with a file is a `UserError` that names the file, the field or key,
and the command that fixes it; a missing entry is never read as zero.
"""

import dataclasses
import json
import math
import os
import platform
from typing import Any, Dict, Iterable, Optional

from tunas_tf import fileio
from tunas_tf.errors import UserError

SCHEMA_VERSION = 1
RUNTIME_LITERT = 'litert-python'
RUNTIME_BENCHMARK_MODEL = 'benchmark_model'

# Header fields that must equal the request when a build resumes (else the new entries would
# not be comparable with the old ones).
MATCHED_FIELDS = ('search_space', 'image_size', 'num_classes', 'granularity', 'dtype', 'threads',
                  'device', 'runtime', 'xnnpack', 'cpu_model', 'libraries', 'protocol')
REQUIRED_FIELDS = MATCHED_FIELDS


# What a table's latencies are (header protocol.statistic). 'min' is the fastest timed run:
# on a shared virtual machine other tenants slow runs down in spells of seconds (the median of
# the same model moved by 5-13 % between repeats here, its minimum by 1-3 %), so the minimum
# estimates the uncontended latency best. 'median' (older host tables, imported medians) and
# 'mean' (benchmark_model logs without a median) are stored in `median_ms`.
STATISTIC_MIN = 'min'
STATISTICS = (STATISTIC_MIN, 'median', 'mean')


@dataclasses.dataclass(frozen=True)
class Entry:
  """One measured unit (ms); p10/p90/min are None when the tool does not report them."""
  median_ms: float
  p10_ms: Optional[float]
  p90_ms: Optional[float]
  n: int
  min_ms: Optional[float] = None

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def value(self, statistic: str) -> float:
    """The latency under `statistic` (one of `STATISTICS`)."""
    check_statistic(statistic)
    if statistic != STATISTIC_MIN:
      return self.median_ms
    if self.min_ms is None:
      raise UserError(f'This entry has no min_ms, but the table\'s statistic is {statistic!r}; '
                      'rebuild the table (entries measured with statistic "min" keep min_ms)')
    return self.min_ms


def check_statistic(statistic: Any) -> str:
  if statistic not in STATISTICS:
    raise UserError(f'Unknown latency statistic {statistic!r}; valid: {", ".join(STATISTICS)}')
  return statistic


def table_statistic(header: dict) -> str:
  """The statistic of a table's latencies (tables written before it was recorded: median)."""
  return check_statistic((header.get('protocol') or {}).get('statistic', 'median'))


def cpu_model() -> str:
  """The CPU model name from /proc/cpuinfo (or `platform.processor()` elsewhere)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.lower().startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown'


def library_versions() -> Dict[str, str]:
  """Versions of the libraries that shape the converted models and their speed."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  versions = {}
  for name in ('tensorflow', 'keras', 'ai-edge-litert', 'numpy'):
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = 'missing'
  return versions


def fill_command(header: dict, path: str) -> str:
  """The command that builds or completes the table described by `header` at `path`."""
  return (f'python -m launch.profile_latency --search_space={header.get("search_space", "S")} '
          f'--image_size={header.get("image_size", "N")} --output={path} '
          f'--granularity={header.get("granularity", "op")} --dtype={header.get("dtype", "float32")} '
          f'--threads={header.get("threads", 1)}')


def _check_entry(key: str, value: Any, path: str) -> Entry:
  if not isinstance(value, dict):
    raise UserError(f'Latency table {path!r}: entry {key!r} must be an object, got {value!r:.80}')
  try:
    entry = Entry(median_ms=float(value['median_ms']),
                  p10_ms=None if value.get('p10_ms') is None else float(value['p10_ms']),
                  p90_ms=None if value.get('p90_ms') is None else float(value['p90_ms']),
                  n=int(value['n']),
                  min_ms=None if value.get('min_ms') is None else float(value['min_ms']))
  except (KeyError, TypeError, ValueError) as e:
    raise UserError(f'Latency table {path!r}: entry {key!r} needs numeric median_ms, p10_ms, '
                    f'p90_ms and n; got {value!r:.120} ({e})') from None
  positive = [v for v in (entry.median_ms, entry.min_ms) if v is not None]
  if not all(math.isfinite(v) and v > 0 for v in positive) or entry.n < 1:
    raise UserError(f'Latency table {path!r}: entry {key!r} has median_ms={entry.median_ms!r}, '
                    f'min_ms={entry.min_ms!r}, n={entry.n!r}; latencies must be positive and '
                    'finite and n >= 1. Delete the entry and rerun the build to measure it '
                    'again')
  return entry


def check_header(header: Any, path: str) -> dict:
  """Validates the header of a table read from `path`."""
  if not isinstance(header, dict):
    raise UserError(f'Latency table {path!r}: "header" must be an object, got {header!r:.80}')
  missing = [f for f in REQUIRED_FIELDS if f not in header]
  if missing:
    raise UserError(f'Latency table {path!r}: header misses {missing}; rebuild it with '
                    f'{fill_command(header, path)}')
  threads = header['threads']
  if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
    raise UserError(f'Latency table {path!r}: header threads must be a positive integer, got '
                    f'{threads!r}')
  image_size = header['image_size']
  if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
    raise UserError(f'Latency table {path!r}: header image_size must be a positive integer, '
                    f'got {image_size!r}')
  return header


class LatencyTable:
  """A latency table in memory: header, entries by key, optional calibration data."""

  def __init__(self, header: dict, entries: Optional[Dict[str, Entry]] = None,
               calibration: Optional[dict] = None):
    self.header = dict(header)
    self.entries: Dict[str, Entry] = dict(entries or {})
    self.calibration = calibration

  def to_json_dict(self) -> dict:
    return {'schema_version': SCHEMA_VERSION, 'header': self.header,
            'entries': {k: self.entries[k].to_dict() for k in sorted(self.entries)},
            'calibration': self.calibration}

  def write(self, path: str) -> None:
    """Writes the table atomically."""
    fileio.atomic_write_text(path, json.dumps(self.to_json_dict(), indent=1, sort_keys=True)
                             + '\n')

  @classmethod
  def from_json_dict(cls, data: Any, path: str) -> 'LatencyTable':
    if not isinstance(data, dict):
      raise UserError(f'Latency table {path!r} must hold a JSON object, got {type(data).__name__}')
    version = data.get('schema_version')
    if version != SCHEMA_VERSION:
      raise UserError(f'Latency table {path!r} has schema_version {version!r}; this library '
                      f'reads version {SCHEMA_VERSION}. Rebuild it with '
                      f'{fill_command(data.get("header") or {}, path)}')
    header = check_header(data.get('header'), path)
    entries = data.get('entries')
    if not isinstance(entries, dict):
      raise UserError(f'Latency table {path!r}: "entries" must be an object, got '
                      f'{entries!r:.80}')
    calibration = data.get('calibration')
    if calibration is not None and not isinstance(calibration, dict):
      raise UserError(f'Latency table {path!r}: "calibration" must be an object or null, got '
                      f'{calibration!r:.80}')
    return cls(header, {k: _check_entry(k, v, path) for k, v in entries.items()}, calibration)

  @classmethod
  def read(cls, path: str) -> 'LatencyTable':
    """Reads and validates a table file; UserError for a missing, corrupt or foreign file."""
    if not os.path.isfile(path):
      raise UserError(f'Latency table {path!r} does not exist; build it with '
                      'python -m launch.profile_latency --search_space=S --image_size=N '
                      f'--output={path}')
    try:
      with open(path) as f:
        data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise UserError(f'Latency table {path!r} is not valid JSON ({e}); it may be truncated. '
                      'Delete it and rebuild with python -m launch.profile_latency ... '
                      f'--output={path}') from None
    return cls.from_json_dict(data, path)

  def check_matches(self, request: dict, path: str) -> None:
    """Raises a UserError naming the first header field that differs from `request`."""
    for field in MATCHED_FIELDS:
      if field in request and self.header.get(field) != request[field]:
        raise UserError(
            f'Latency table {path!r} was built with {field}={self.header.get(field)!r}, but '
            f'{field}={request[field]!r} was requested. Use a new --output file for the new '
            f'setting (one table per device, runtime, threads, dtype, space and image size), '
            f'or rebuild this one: {fill_command({**self.header, **request}, path)}')

  def missing(self, keys: Iterable[str]) -> list:
    return [k for k in keys if k not in self.entries]

  def require(self, keys: Iterable[str], path: str) -> None:
    """Raises a UserError naming the first missing key (and how many miss) if any is absent."""
    missing = self.missing(keys)
    if missing:
      raise UserError(f'Latency table {path!r} misses {len(missing)} entries, e.g. '
                      f'{missing[0]!r}; complete it with {fill_command(self.header, path)}')

  def latency(self, key: str, path: str = '') -> float:
    """The latency of `key` under the table's statistic."""
    if key not in self.entries:
      raise UserError(f'Latency table {path or "(in memory)"!r} has no entry {key!r}; complete '
                      f'it with {fill_command(self.header, path or "TABLE.json")}')
    return self.entries[key].value(table_statistic(self.header))
