"""Errors a coder can act on: each names the file (or option) and the problem in one line."""


class NovaInfantError(Exception):
    """Base class of every error this package raises on purpose."""


class MediaError(NovaInfantError):
    """A video or audio file cannot be read as needed."""


class VideoDecodeError(MediaError):
    """A video file is unreadable, truncated or has no frames."""


class AudioDecodeError(MediaError):
    """An audio file (or a video's audio track) is missing, unreadable or empty."""


class WeightsUnavailableError(NovaInfantError):
    """Model weights were found neither in a local directory, the Hugging Face cache nor on the hub."""


class OptionError(NovaInfantError, ValueError):
    """A module option has an invalid value (e.g. a frame step of 0)."""


class StreamError(NovaInfantError):
    """A feature stream is malformed: wrong dimension, NaN/inf rows, unreadable header."""


class AlignmentError(NovaInfantError):
    """Streams or annotations of one session disagree on the time axis by more than one frame."""


class TrainerFileError(NovaInfantError):
    """A ``.trainer`` file is missing or malformed."""


class AnnotationError(NovaInfantError):
    """An annotation is missing, locked, or holds labels outside its scheme."""


class PathError(NovaInfantError, ValueError):
    """A name that becomes part of a path is unsafe (separator, ``..``, absolute, empty), or an output would replace
    something this package did not create."""


class InputMissingError(NovaInfantError, KeyError):
    """A command was not given an input its module needs (a ``KeyError`` too, for callers that test a port)."""

    def __str__(self) -> str:  # KeyError quotes its text; the one-line message should not
        return str(self.args[0]) if self.args else ""


class OutputError(NovaInfantError):
    """An output could not be written (full disk, read-only folder, another run writing it); the previous version
    of the output is kept."""


class SavedModelError(NovaInfantError):
    """A saved model folder (ICEP-R bundle, tagger head, DINOv2 PCA basis; :mod:`nova_infant.core.saved`) is
    missing, damaged, of another kind or of an older format."""


class BatchError(NovaInfantError):
    """A batch cannot start (no sessions, unknown trainer or io, bad option)."""
