"""The one exception a probe raises: the service is not ready yet (retry until the deadline)."""


class WarmingUp(Exception):
    """The service answered a warm-up code (502/503/504) or not at all yet; the message says what."""
