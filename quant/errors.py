"""User-facing errors.

Every problem with a user's model, data or options is raised as an `IntforgeError`
subclass carrying one line of text that names the file, node, operator or tensor.
The command-line front prints that line and exits with status 2; anything else
escaping is a bug in intforge, not in the user's input.
"""


class IntforgeError(Exception):
    """A problem with the user's input, reported as one clear line."""


class ModelError(IntforgeError):
    """The model file or graph is unreadable, malformed or unsupported."""


class DataError(IntforgeError):
    """A data, calibration or configuration file is unusable."""


class QuantizationError(IntforgeError):
    """The model cannot be quantized within the integer contract (e.g. a shift out of range)."""
