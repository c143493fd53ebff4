"""Named stand-ins for tests (see DESIGN.md: a stand-in only where the real thing cannot run)."""
