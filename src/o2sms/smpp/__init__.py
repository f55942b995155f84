"""Sans-IO SMPP 3.4 protocol core (no sockets, no asyncio)."""
