"""The one exception family of jazzd.  Pure; imported by every thread.

Every message is one line that names the problem and, where there is one, the fix (one
line per problem when there are several, e.g. the bad bundles of a program folder).
"""


class JazzdError(Exception):
    """Base class: `jazzd` prints str(err) and exits non-zero, without a traceback."""

    exit_code = 1


class InputError(JazzdError):
    """A source file (MIDI, CSV, corpus) cannot be read or makes no sense."""

    exit_code = 2


class ChordSymbolError(InputError):
    """A chord symbol that the parser does not understand."""


class VocabularyError(JazzdError):
    """A value string that is not in the grammar, or a vocabulary that is inconsistent."""


class BundleError(JazzdError):
    """A weights bundle that is missing, damaged or inconsistent."""

    exit_code = 2


class ConfigError(JazzdError):
    """A configuration file or command-line setting that is wrong."""

    exit_code = 2


class PortError(JazzdError):
    """A MIDI port or MIDI system that cannot be opened."""

    exit_code = 2


class NoMidiSystem(PortError):
    """No MIDI system at all could be opened (as against a port that is not there)."""


class ControlError(JazzdError):
    """The control socket: no daemon listening, access denied, or a request it refused."""

    exit_code = 1
