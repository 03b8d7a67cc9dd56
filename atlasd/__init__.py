"""atlasd: a local, durable event log daemon that syncs to Convex."""

__version__ = "0.1.0"

__all__ = ["__version__"]
