"""The devices app's errors (docs/devices.md, "Errors")."""

from creatorcommerce.errors import DomainError, NotFound


class InvalidCue(DomainError):
    """A cue kind or params a device cannot take: ``invalid_cue_kind``, ``invalid_cue_params``."""

    code = "invalid_cue"
    message = "The cue is invalid."


class InvalidCueRule(DomainError):
    code = "invalid_cue_rule"
    message = "The cue rule is invalid."


class DeviceNotFound(NotFound):
    code = "device_not_found"
    message = "No such device."
