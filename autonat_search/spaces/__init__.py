"""Per-step spaces of the 4T-2 real numbers beside ``space``'s stick-breaking one.

``raw``: the numbers as they are (the finite-difference search's space); ``centered``: each
number in a window around the reference's initial schedule, ratios non-increasing.
"""

from autonat_search.spaces.centered import CENTRE_WIDTHS, CenteredSpace
from autonat_search.spaces.raw import RawStepSpace, step_names, step_range_keys

__all__ = ["CENTRE_WIDTHS", "CenteredSpace", "RawStepSpace", "step_names", "step_range_keys"]
