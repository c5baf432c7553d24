"""The experiments' errors (docs/experiments.md, "Errors")."""

from creatorcommerce.errors import Conflict, DomainError, NotFound, PermissionDenied


class InvalidExperiment(DomainError):
    """``code``: invalid_slot, invalid_variants, invalid_ramp, invalid_name."""

    code = "invalid_experiment"
    message = "The experiment is invalid."


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"
    message = "No such experiment."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    message = "The experiment cannot do that in its current status."


class SlotBusy(Conflict):
    code = "slot_busy"
    message = "Another experiment on this slot is running for these viewers."


class PlatformWideNeedsStaff(PermissionDenied):
    code = "platform_needs_staff"
    message = "Only staff run platform-wide experiments."


class InvalidClientEvents(DomainError):
    """A client-events batch refused whole (nothing stored); ``code`` says why and, for one
    event, ``index`` and ``field`` where."""

    code = "invalid_events"
    message = "The events are invalid."
