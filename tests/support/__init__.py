"""Test servers and named stand-ins (never imported by the package)."""
