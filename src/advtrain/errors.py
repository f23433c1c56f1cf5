"""The error a missing or unobtainable external resource raises; below :mod:`advtrain.sources` (which checks local
copies) and :mod:`advtrain.downloads` (which fetches them), so that both raise it without importing each other."""


class ResourceError(RuntimeError):
    """A resource that is missing or cannot be fetched; the message names the config key that provides it."""
