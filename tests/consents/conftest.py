# The geofences' fixtures: a venue, and viewers with location consent.
from tests.geofences.conftest import _fresh_fences, creator, other_viewer, venue, viewer  # noqa: F401
