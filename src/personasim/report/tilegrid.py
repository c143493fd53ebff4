"""A tile-grid map of the 50 states and DC: one square per state, placed roughly where the state
lies (row 0 is the north, column 0 the west). Coordinates are personasim's own layout."""

from __future__ import annotations

#: Rows of the grid, north to south, as (state, column) pairs.
_ROWS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("AK", 0), ("ME", 11)),
    (("WI", 6), ("VT", 10), ("NH", 11)),
    (
        ("WA", 1),
        ("ID", 2),
        ("MT", 3),
        ("ND", 4),
        ("MN", 5),
        ("IL", 6),
        ("MI", 7),
        ("NY", 9),
        ("MA", 10),
    ),
    (
        ("OR", 1),
        ("NV", 2),
        ("WY", 3),
        ("SD", 4),
        ("IA", 5),
        ("IN", 6),
        ("OH", 7),
        ("PA", 8),
        ("NJ", 9),
        ("CT", 10),
        ("RI", 11),
    ),
    (
        ("CA", 1),
        ("UT", 2),
        ("CO", 3),
        ("NE", 4),
        ("MO", 5),
        ("KY", 6),
        ("WV", 7),
        ("VA", 8),
        ("MD", 9),
        ("DE", 10),
    ),
    (("AZ", 2), ("NM", 3), ("KS", 4), ("AR", 5), ("TN", 6), ("NC", 7), ("SC", 8), ("DC", 9)),
    (("OK", 4), ("LA", 5), ("MS", 6), ("AL", 7), ("GA", 8)),
    (("HI", 0), ("TX", 4), ("FL", 9)),
)

#: State code -> (row, column) of its tile.
TILES: dict[str, tuple[int, int]] = {
    state: (row, col) for row, cells in enumerate(_ROWS) for state, col in cells
}
N_ROWS = len(_ROWS)
N_COLS = 1 + max(col for _, col in TILES.values())
