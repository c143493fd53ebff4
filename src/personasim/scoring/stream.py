"""Reading responses for scoring: one streaming pass over Arrow record batches.

:func:`collect_cells` reads a responses table (an in-memory DataFrame, a Parquet file or a folder
of Parquet parts) batch by batch, reading only the columns scoring needs, and keeps for every
*cell* (question x tier x generator x simulator x estimator) the usable rows as compact arrays:
their row number in the file, person id, weight, distribution over the question's options (in
original order, renormalized) and the group code of each person attribute the truth needs.
Excluded rows (invalid answers, ``valid_mass`` at or below the threshold, invalid personas,
neither ``probs`` nor ``answer``) are counted per cell and dropped. Memory is one record batch
plus the compact arrays: about 30 bytes and the options' floats per answer, where a pandas table
of the same answers (object columns of lists and strings) took several hundred bytes.

Group values are compared as text (``str`` of the value, as pandas' ``astype(str)`` gives it), so
a state read as ``"CA"``, ``"California"`` or FIPS ``6`` is one state for elections.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personasim.core.errors import DataError
from personasim.core.keys import MODEL_KEY
from personasim.core.states import state_code
from personasim.core.tables import ParquetTable
from personasim.core.validity import invalid_answers, invalid_persona_keys
from personasim.survey.questions import Question, Survey

if TYPE_CHECKING:
    from personasim.calibrate.weights import WeightLookup

PROBS_TOLERANCE = 1e-3
"""A row's probs may miss 1 by this much (float rounding, shares written with few digits)."""
REQUIRED = ["person_id", "question_id", "probs", *MODEL_KEY]
CELL = ["question_id", *MODEL_KEY]
"""A question answered by one tier x models combination: the unit excluded answers count in."""
OPTIONAL = ("answer", "valid", "valid_mass", "weight")
"""Response columns read when present."""
BATCH_ROWS = 65_536
"""Rows per record batch read from Parquet."""


@dataclass
class CellRows:
    """The usable rows of one cell, in file order."""

    position: np.ndarray
    """Row number of each row in the responses (int32, int64 past 2**31 rows)."""
    person: np.ndarray
    """Person of each row: the 64-bit hash of its id as text (8 bytes a row where the text took
    about twice that; two of a million persons share a hash with a probability of about 3e-8)."""
    weight: np.ndarray
    """Weight of each row (float64)."""
    probs: np.ndarray
    """Distribution of each row over the question's options, original order (rows, options)."""
    groups: dict[str, np.ndarray]
    """Attribute -> group code of each row (index into :attr:`Groups.labels`; -1: missing)."""

    def __len__(self) -> int:
        return len(self.position)


class _CellBuffer:
    """The arrays of one cell, sized by a first pass and filled batch by batch (no chunks to
    join at the end: joining copies every array and leaves the freed chunks as holes in the
    heap)."""

    def __init__(
        self, capacity: int, options: int, attributes: Sequence[str], position_type: type
    ) -> None:
        self.fill = 0
        self.position = np.empty(capacity, dtype=position_type)
        self.person = np.empty(capacity, dtype=np.uint64)
        self.weight = np.empty(capacity)
        self.probs = np.empty((capacity, options))
        self.groups = {a: np.empty(capacity, dtype=np.int32) for a in attributes}

    def add(
        self,
        position: np.ndarray,
        person: np.ndarray,
        weight: np.ndarray,
        probs: np.ndarray,
        groups: dict[str, np.ndarray],
    ) -> None:
        """Append rows."""
        span = slice(self.fill, self.fill + len(position))
        self.position[span], self.person[span], self.weight[span] = position, person, weight
        self.probs[span] = probs
        for name, codes in groups.items():
            self.groups[name][span] = codes
        self.fill = span.stop

    def rows(self) -> CellRows:
        """The rows added (views)."""
        n = self.fill
        return CellRows(
            self.position[:n],
            self.person[:n],
            self.weight[:n],
            self.probs[:n],
            {a: c[:n] for a, c in self.groups.items()},
        )


@dataclass
class Groups:
    """Group labels per attribute, shared by all cells."""

    labels: dict[str, list[str]] = field(default_factory=dict)
    """Attribute -> label of each code."""
    codes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Attribute -> label -> code."""

    def code(self, attribute: str, label: str) -> int:
        """The code of ``label`` (a new one the first time it is seen)."""
        known = self.codes.setdefault(attribute, {})
        if label not in known:
            known[label] = len(known)
            self.labels.setdefault(attribute, []).append(label)
        return known[label]

    def members(self, attribute: str, rows: CellRows) -> dict[str, np.ndarray]:
        """Label -> positions of the ``rows`` in that group (ascending), labels sorted (groups
        with no row left out). Positions, not masks: a mask per group costs a byte per row and
        group, positions cost 8 bytes per row in all."""
        if attribute not in rows.groups:
            return {}
        codes, labels = rows.groups[attribute], self.labels.get(attribute, [])
        order = np.argsort(codes, kind="stable")
        present, starts = np.unique(codes[order], return_index=True)
        ends = [*starts[1:], len(order)]
        found = {
            int(c): order[a:b] for c, a, b in zip(present, starts, ends, strict=True) if c >= 0
        }
        return {labels[c]: found[c] for c in sorted(found, key=lambda c: labels[c])}


@dataclass
class Collected:
    """What :func:`collect_cells` read."""

    cells: dict[tuple[str, ...], CellRows]
    """Cell key (question id, tier, generator, simulator, estimator) -> its usable rows."""
    counts: pd.DataFrame
    """Per cell: ``answers`` (rows read), ``excluded`` and ``excluded_share``."""
    groups: Groups
    """Group labels of every attribute read."""


# --------------------------------------------------------------------------- sources


class ResponseSource:
    """Responses as record batches: a DataFrame, or a Parquet file or folder of parts read one
    file and one batch at a time by the one folder reader
    (:class:`~personasim.core.tables.ParquetTable`; a pyarrow dataset scan reads whole row
    groups ahead, several at once: far more memory on parts of a million rows)."""

    where = "responses"
    """What the error messages call the responses (their path when read from a file)."""

    def __init__(self, responses: pd.DataFrame | str | Path, hint: str = "") -> None:
        """``hint``: what to do when a file cannot be read (shown with the error)."""
        self.frame: pd.DataFrame | None = None
        self.table: ParquetTable | None = None
        if isinstance(responses, pd.DataFrame):
            self.frame = responses
            self.names = [str(c) for c in responses.columns]
            missing = [c for c in REQUIRED if c not in self.names]
            if missing:
                raise DataError(f"responses lack columns {missing}", hint=f"required: {REQUIRED}")
            return
        self.where = str(responses)
        self.table = ParquetTable.open(responses, "responses table", hint)
        for path in self.table.files:
            names = pq.read_schema(path).names
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise DataError(
                    f"{path}: not a responses table (no {missing[0]!r} column)",
                    hint=hint or f"required: {REQUIRED}",
                )
        self.names = list(self.table.schema.names)
        probs = self.table.schema.field("probs").type
        if not (
            pa.types.is_null(probs) or pa.types.is_list(probs) or pa.types.is_large_list(probs)
        ):
            raise DataError(
                f"{self.where}: probs must be lists of numbers, not {probs}",
                hint="write probs as a list column, as `personasim simulate` does",
            )
        self.check_unique()

    def check_unique(self) -> None:
        """Refuse an answer key (person, question, models) given twice: two rows of one answer
        would count as two persons. Reads the key columns only (8 bytes a row)."""
        key = ["person_id", "question_id", *MODEL_KEY]
        hashes = [
            pd.util.hash_pandas_object(b.to_pandas().astype(str), index=False).to_numpy()
            for b in self.batches(key)
        ]
        if not hashes:
            return
        every = np.concatenate(hashes)
        repeated = len(every) - len(np.unique(every))
        if repeated:
            raise DataError(
                f"{self.where}: {repeated} response row(s) repeat the person_id, "
                "question_id and models of another row",
                hint="keep one row per answer (a part written twice?)",
            )

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """The ``columns`` of every row, in order, a batch at a time (a column no file has is
        left out; parts of differing types come in one schema)."""
        if self.frame is not None:
            yield from _frame_table(self.frame, columns).to_batches(BATCH_ROWS)
        elif self.table is not None:
            yield from self.table.batches(columns, BATCH_ROWS)


def _text_or_none(values: pd.Series) -> pd.Series:
    """Values as text, missing ones (None, NaN, NA) as None: one Arrow type whatever the Python
    types (vectorized: a per-value lambda took 7 of 18 s scoring 300,000 in-memory rows)."""
    text = values.astype(str).to_numpy(dtype=object)
    text[values.isna().to_numpy()] = None
    return pd.Series(text, index=values.index, dtype=object)


def _missing(value: Any) -> bool:
    """None, NaN or NA."""
    return value is None or (not isinstance(value, (list, np.ndarray)) and bool(pd.isna(value)))


def _float_list(value: Any) -> list[float] | None:
    """A ``probs`` entry as a list of floats (None when missing)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            return [float(x) for x in value]
        except (TypeError, ValueError):
            pass
    elif _missing(value):
        return None
    raise DataError(f"responses: probs must be lists of numbers, got {str(value)[:40]!r}")


def _frame_table(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    """The ``columns`` of an in-memory responses table as Arrow (text columns as text)."""
    out = {}
    for column in columns:
        values = frame[column].reset_index(drop=True)
        if column == "probs":
            values = values.map(_float_list)
        elif column in ("weight", "valid_mass"):
            values = pd.to_numeric(values, errors="coerce").astype(float)
        elif column == "valid":
            values = values.astype("boolean")
        else:
            values = _text_or_none(values)
        out[column] = values
    try:
        return pa.Table.from_pandas(pd.DataFrame(out), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
        raise DataError(f"responses: a column cannot be read ({error})") from None


# --------------------------------------------------------------------------- person lookups


@dataclass
class Persons:
    """A persons table indexed for lookups by person id (as text)."""

    index: pd.Index
    """Person id of each row (text, first row of each id kept)."""
    table: pd.DataFrame
    """The rows, aligned with :attr:`index`."""
    weight: np.ndarray | None = None
    """Each row's ``weight`` as a number (NaN when it is none), then a NaN for ids not in the
    table; None without a weight column."""

    @classmethod
    def of(cls, persons: pd.DataFrame | None) -> Persons | None:
        """Index ``persons`` (None stays None)."""
        if persons is None:
            return None
        if "person_id" not in persons.columns:
            raise DataError("persons table lacks column 'person_id'")
        table = persons.drop_duplicates("person_id").reset_index(drop=True)
        weight = None
        if "weight" in table.columns:
            values = pd.to_numeric(table["weight"], errors="coerce").to_numpy(float)
            weight = np.append(values, np.nan)
        return cls(pd.Index(table["person_id"].astype(str)), table, weight)

    def rows_of(self, person: np.ndarray) -> np.ndarray:
        """The persons row of each id (text; -1 when the id is not in the table)."""
        return self.index.get_indexer(person)


@dataclass
class Attribute:
    """Where one group attribute's values come from."""

    name: str
    """The attribute as the truth names it."""
    column: str
    """The column holding it."""
    in_responses: bool
    """Read from the responses (else from the persons table)."""
    states: bool = False
    """Values are US states, normalized to postal codes."""
    person_codes: np.ndarray | None = None
    """From the persons table: the group code of each persons row."""


def find_attributes(
    names: Sequence[str],
    responses: Sequence[str],
    persons: Persons | None,
    states: Sequence[str] = (),
) -> list[Attribute]:
    """The column of each attribute: the exact name, else the first whose name matches ignoring
    case, responses' columns before the persons table's (attributes without a column: none)."""
    extra = [] if persons is None else [c for c in persons.table.columns if c not in responses]
    columns = [*responses, *extra]
    found = []
    for name in names:
        column = (
            name
            if name in columns
            else next((c for c in columns if str(c).casefold() == name.casefold()), None)
        )
        if column is not None:
            found.append(Attribute(name, str(column), column in responses, name in states))
    return found


def _label(value: Any, states: bool) -> str:
    """The group label of a value."""
    return state_code(value) if states else str(value)


def _person_codes(attribute: Attribute, persons: Persons, groups: Groups) -> np.ndarray:
    """The group code of each persons row for ``attribute`` (-1: missing)."""
    values = persons.table[attribute.column]
    codes = np.full(len(values), -1, dtype=np.int32)
    present = values.notna().to_numpy()
    texts = values[present].astype(str)
    labels = {t: groups.code(attribute.name, _label(t, attribute.states)) for t in texts.unique()}
    codes[present] = texts.map(labels).to_numpy(dtype=np.int32)
    return codes


def _column_codes(column: pa.Array, attribute: Attribute, groups: Groups) -> np.ndarray:
    """The group code of each value of a responses column (-1: missing)."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    name, states = attribute.name, attribute.states
    lookup = np.array(
        [
            -1 if _missing(v) else groups.code(name, _label(v, states))
            for v in encoded.dictionary.to_pylist()
        ]
        + [-1],
        dtype=np.int32,
    )
    index = encoded.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)
    return lookup[index]


# --------------------------------------------------------------------------- one pass


@dataclass
class _Reader:
    """State of one pass over the responses."""

    survey: Survey
    attributes: list[Attribute]
    persons: Persons | None
    bad_personas: dict[tuple[str, str], list[str]]
    """(tier, generator) -> ids of that tier and generator's invalid personas."""
    min_valid_mass: float
    has: set[str]
    weights: WeightLookup | None = None
    uncovered: int = 0
    groups: Groups = field(default_factory=Groups)
    sizes: dict[tuple[str, ...], int] = field(default_factory=dict)
    position_type: type = np.int64
    cells: dict[tuple[str, ...], _CellBuffer] = field(default_factory=dict)
    answers: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    persona_excluded: int = 0
    other_excluded: int = 0
    seen: int = 0
    known_ids: pd.Index = field(init=False)
    """The survey's question ids, indexed once for the per-batch lookups."""

    def __post_init__(self) -> None:
        self.known_ids = pd.Index(self.survey.ids)

    def read(self, batch: pa.RecordBatch) -> None:
        """Add one record batch."""
        start, self.seen = self.seen, self.seen + batch.num_rows
        has = self.has & set(batch.schema.names)
        person = text_column(batch.column("person_id"))
        person_rows = self.persons.rows_of(person) if self.persons is not None else None
        weight, uncovered = self._weights(batch, person, person_rows, has)
        cells = self.cells_of(batch)
        if not cells:
            return
        self.uncovered += sum(int(uncovered[slots].sum()) for slots in cells.values())
        codes = {a.name: self._codes(a, batch, person_rows) for a in self.attributes}
        for key, slots in cells.items():
            self._cell(key, slots, batch, start, person, weight, codes, has)

    def cells_of(self, batch: pa.RecordBatch) -> dict[tuple[str, ...], np.ndarray]:
        """The rows of each cell in the batch (rows of questions without truth: none)."""
        question = text_column(batch.column("question_id"))
        known = self.known_ids.get_indexer(question) >= 0
        self.unknown.update(set(question[~known].tolist()))
        if not known.any():
            return {}
        models = [text_column(batch.column(c)) for c in MODEL_KEY]
        slots = np.flatnonzero(known)
        cells = (
            pd.Series(slots)
            .groupby([question[slots], *(m[slots] for m in models)], sort=False)
            .indices
        )
        return {tuple(str(k) for k in key): slots[where] for key, where in cells.items()}

    def size(self, batch: pa.RecordBatch) -> None:
        """First pass: count the rows of each cell in the batch."""
        self.seen += batch.num_rows
        for key, slots in self.cells_of(batch).items():
            self.sizes[key] = self.sizes.get(key, 0) + len(slots)

    def _weights(
        self,
        batch: pa.RecordBatch,
        person: np.ndarray,
        person_rows: np.ndarray | None,
        has: set[str],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's weight: the calibrated one (``weights`` given), else the responses' own,
        else the persons table's, else 1; and which rows no calibrated weight covered."""
        own = _numbers(batch.column("weight")) if "weight" in has else None
        by_person = None
        if self.persons is not None and self.persons.weight is not None:
            by_person = self.persons.weight[person_rows]
        uncovered = np.zeros(batch.num_rows, dtype=bool)
        if self.weights is not None:
            from personasim.calibrate.weights import base_weight

            found = self.weights.lookup(
                person, {k: text_column(batch.column(k)) for k in self.weights.keys}
            )
            uncovered = np.isnan(found)
            weight = np.where(uncovered, base_weight(own, by_person, batch.num_rows), found)
        elif own is not None:
            weight = own
        else:
            weight = by_person if by_person is not None else np.ones(batch.num_rows)
        self._check(weight)
        return weight, uncovered

    @staticmethod
    def _check(weight: np.ndarray) -> None:
        """Weights must be numbers >= 0."""
        if np.isnan(weight).any() or (weight < 0).any():
            raise DataError("person weights must be non-negative numbers (some are missing or < 0)")

    def _codes(
        self, attribute: Attribute, batch: pa.RecordBatch, person_rows: np.ndarray | None
    ) -> np.ndarray:
        """Group codes of the batch's rows for one attribute."""
        if attribute.in_responses:
            if attribute.column not in batch.schema.names:
                return np.full(batch.num_rows, -1, dtype=np.int32)
            return _column_codes(batch.column(attribute.column), attribute, self.groups)
        if attribute.person_codes is None:
            persons = self.persons
            assert persons is not None  # an attribute not in the responses came from persons
            attribute.person_codes = _person_codes(attribute, persons, self.groups)
        return np.append(attribute.person_codes, -1)[person_rows]

    def _cell(
        self,
        key: tuple[str, ...],
        slots: np.ndarray,
        batch: pa.RecordBatch,
        start: int,
        person: np.ndarray,
        weight: np.ndarray,
        codes: dict[str, np.ndarray],
        has: set[str],
    ) -> None:
        """Add the rows ``slots`` of the batch, all in cell ``key``."""
        question = self.survey.question(key[0])
        take = pa.array(slots)
        probs, usable = _distributions(question, batch, take, has)
        answer_bad = _invalid(batch, take, has, self.min_valid_mass)
        persona_bad = self._persona_bad(person[slots], key)
        usable &= ~(answer_bad | persona_bad)
        self.persona_excluded += int(persona_bad.sum())
        self.other_excluded += int((~usable & ~persona_bad).sum())
        tally = self.answers.setdefault(key, [0, 0])
        tally[0], tally[1] = tally[0] + len(slots), tally[1] + int((~usable).sum())
        if not usable.any():
            return
        kept = slots[usable]
        if key not in self.cells:
            self.cells[key] = _CellBuffer(
                self.sizes[key], len(question.options), list(codes), self.position_type
            )
        self.cells[key].add(
            start + kept,
            person_hash(person[kept]),
            weight[kept],
            probs[usable],
            {name: c[kept] for name, c in codes.items()},
        )

    def _persona_bad(self, person: np.ndarray, key: tuple[str, ...]) -> np.ndarray:
        """Rows whose persona (person, tier, generator) is marked invalid (a hash lookup of the
        cell's persons, not a Python loop over every row)."""
        bad = self.bad_personas.get((key[1], key[2]))
        if not bad:
            return np.zeros(len(person), dtype=bool)
        return pd.Index(bad).get_indexer(person) >= 0

    def counts(self) -> pd.DataFrame:
        """Per cell ``answers``, ``excluded`` and ``excluded_share`` (cells sorted)."""
        keys = sorted(self.answers)
        frame = pd.DataFrame(keys, columns=CELL) if keys else pd.DataFrame(columns=CELL)
        frame["answers"] = [self.answers[k][0] for k in keys]
        frame["excluded"] = [self.answers[k][1] for k in keys]
        frame["excluded_share"] = frame["excluded"] / frame["answers"]
        return frame


def person_hash(person: np.ndarray) -> np.ndarray:
    """The 64-bit hash of each person id (text)."""
    return pd.util.hash_array(np.asarray(person, dtype=object))


def text_column(column: pa.Array) -> np.ndarray:
    """A key column as text, missing values as ``""`` (object array)."""
    values = pc.fill_null(pc.cast(column, pa.string()), "")
    return values.to_numpy(zero_copy_only=False)


def _numbers(column: pa.Array) -> np.ndarray:
    """A numeric column as float64, text that is no number and missing values as NaN."""
    try:
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(float)


def _invalid(
    batch: pa.RecordBatch, take: pa.Array, has: set[str], min_valid_mass: float
) -> np.ndarray:
    """The batch's rows ``take`` that :func:`personasim.core.validity.invalid_answers` rejects."""
    valid = batch.column("valid").take(take) if "valid" in has else None
    mass = batch.column("valid_mass").take(take) if "valid_mass" in has else None
    return invalid_answers(len(take), valid, mass, min_valid_mass)


def _distributions(
    question: Question, batch: pa.RecordBatch, take: pa.Array, has: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distribution over the question's options (``probs``, which must sum to 1
    within :data:`PROBS_TOLERANCE`, renormalized; else one-hot of ``answer``) and whether it
    has one (``probs`` of mass 0, or neither: it has not)."""
    n = len(question.options)
    probs = batch.column("probs").take(take)
    if pa.types.is_null(probs.type):
        probs = pa.nulls(len(take), pa.list_(pa.float64()))
    given = probs.is_valid().to_numpy(zero_copy_only=False)
    out, usable = np.zeros((len(take), n)), np.zeros(len(take), dtype=bool)
    if given.any():
        listed = probs.filter(pa.array(given))
        sizes = pc.list_value_length(listed).to_numpy(zero_copy_only=False)
        if (sizes != n).any():
            raise DataError(
                f"responses: question {question.id!r} has {n} options but probs "
                f"has {sizes[sizes != n][0]}"
            )
        mat = pc.cast(listed.flatten(), pa.float64()).to_numpy(zero_copy_only=False)
        mat = mat.astype(float).reshape(len(listed), n)
        if not np.all(np.isfinite(mat)) or np.any(mat < 0):
            raise DataError(f"responses: question {question.id!r} has negative or NaN probs")
        totals = mat.sum(axis=1)
        off = (totals > 0) & (np.abs(totals - 1) > PROBS_TOLERANCE)
        if off.any():
            raise DataError(
                f"responses: question {question.id!r}: {int(off.sum())} row(s) of "
                f"probs do not sum to 1 (first sums to {totals[off][0]:g})",
                hint="probs are shares of one answer: write them normalized",
            )
        out[given] = mat / np.where(totals > 0, totals, 1.0)[:, None]
        usable[given] = totals > 0
    if (~given).any() and "answer" in has:
        slots = np.flatnonzero(~given)
        rows = take.take(pa.array(slots))  # the batch rows of the cell's rows without probs
        answers = pd.Series(batch.column("answer").take(rows).to_pylist(), dtype=object)
        present = answers.notna().to_numpy() & (answers.astype(str) != "").to_numpy()
        texts = answers[present].astype(str)
        option = {text: question.index_of(text) for text in texts.unique()}  # once per answer
        out[slots[present], texts.map(option).to_numpy(dtype=int)] = 1.0
        usable[slots[present]] = True
    return out, usable


def collect_cells(
    source: ResponseSource,
    survey: Survey,
    attributes: Sequence[str],
    persons: pd.DataFrame | None,
    personas: pd.DataFrame | None,
    min_valid_mass: float,
    notes: list[str],
    states: Sequence[str] = (),
    weights: pd.DataFrame | None = None,
) -> Collected:
    """Read ``source`` once into per-cell usable rows (see the module docstring).

    ``attributes``: the group attributes to keep (``states``: those holding US states);
    ``persons``: weights and attributes by ``person_id`` where the responses lack them;
    ``weights``: calibrated weights (:class:`~personasim.calibrate.weights.WeightLookup`) that
    replace the others where they cover a row;
    ``personas``: rows of personas marked invalid there are excluded. Notes for the user
    (questions without truth, excluded rows) are appended to ``notes``."""
    indexed = Persons.of(persons)
    found = find_attributes(attributes, source.names, indexed, states)
    lookup = None
    if weights is not None:
        from personasim.calibrate.weights import WeightLookup

        lookup = WeightLookup(weights, source.names)
    by_model: dict[tuple[str, str], list[str]] = {}
    for person, tier, generator in invalid_persona_keys(personas):
        by_model.setdefault((tier, generator), []).append(person)
    reader = _Reader(
        survey,
        found,
        indexed,
        by_model,
        min_valid_mass,
        {c for c in OPTIONAL if c in source.names},
        lookup,
    )
    for batch in source.batches(["question_id", *MODEL_KEY]):  # first pass: cell sizes
        reader.size(batch)
    reader.position_type = np.int32 if reader.seen < 2**31 else np.int64
    reader.seen, reader.unknown = 0, set()
    columns = [*REQUIRED, *sorted(reader.has), *sorted({a.column for a in found if a.in_responses})]
    for batch in source.batches(list(dict.fromkeys(columns))):
        reader.read(batch)
    if reader.uncovered:
        notes.append(
            f"{reader.uncovered} response row(s) without a calibrated weight keep their base weight"
        )
    if reader.unknown:
        unknown = sorted(reader.unknown)
        notes.append(f"{len(unknown)} question(s) without truth skipped: {unknown[:5]}")
    if reader.persona_excluded:
        notes.append(f"{reader.persona_excluded} response row(s) of invalid personas excluded")
    if reader.other_excluded:
        notes.append(
            f"{reader.other_excluded} response row(s) excluded: invalid, "
            f"valid_mass <= {min_valid_mass:g}, or no probs and no answer"
        )
    cells = {key: buffer.rows() for key, buffer in reader.cells.items()}
    pa.default_memory_pool().release_unused()  # the read batches' memory, back to the system
    return Collected(cells, reader.counts(), reader.groups)
