"""o2sms, the O2 SMS Connector: SMPP 3.4 client, simulator and connector service."""

__version__ = "0.1.0"

__all__ = ["__version__"]
