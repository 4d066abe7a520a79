"""Error types shared by the whole library.

`UserError` marks a problem with what the user asked for (an unknown name, a malformed
architecture string, a missing dataset...). Launch scripts catch it, print its message and
exit with a non-zero status without a traceback; everything else is a bug and keeps its
traceback.
"""


class UserError(ValueError):
  """Bad input from the user; the message says what was received and what is valid."""


def unknown_name(kind, name, known):
  """Returns a UserError for an unknown registry name, listing the known ones."""
  known = sorted(known)
  return UserError(f'Unknown {kind} {name!r}; known {kind}s: {", ".join(known)}')
