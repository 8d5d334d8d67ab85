"""SQL for the OMOP CDM reader: connecting, naming tables, streaming rows, resolving concepts.

Everything goes through SQLAlchemy, so one code path serves DuckDB (``duckdb:///file.duckdb``,
duckdb-engine), PostgreSQL (``postgresql://...``, psycopg 3) and SQLite
(``sqlite:///file.db``). Concepts are resolved through the database's own ``concept`` and
``concept_ancestor`` tables by vocabulary and code (or, for a drug whose code no vocabulary
entry holds, by its RxNorm ingredient name); no concept id is written in this code.
Tables are read in chunks of about :data:`CHUNK_ROWS` rows, so memory is bounded by what is kept
(the rows used and the keys of the rows dropped), not by the size of the tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

__all__ = ["CHUNK_ROWS", "connect", "Database"]

#: rows fetched per round trip
CHUNK_ROWS = 200_000


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading an OMOP database needs {module}: pip install 'ketamine-outcomes[omop]'") from exc


def connect(url: str):
    """A SQLAlchemy engine for ``url``; ``postgresql://`` uses the psycopg 3 driver.

    Examples
    --------
    >>> from analysis.io._omop_sql import connect
    >>> connect("postgresql://user@localhost/cdm").url.drivername
    'postgresql+psycopg'
    """
    sqlalchemy = _require("sqlalchemy")
    text = str(url)
    for plain in ("postgresql://", "postgres://"):
        if text.startswith(plain):
            _require("psycopg")
            text = "postgresql+psycopg://" + text[len(plain):]
    if text.startswith("duckdb:"):
        _require("duckdb_engine")
    return sqlalchemy.create_engine(text)


class Database:
    """An OMOP CDM database: its tables (in ``schema``) and the queries the reader needs."""

    def __init__(self, engine, schema: str | None = None) -> None:
        import sqlalchemy

        self.engine = engine
        self.schema = schema
        self._sa = sqlalchemy
        self._inspector = sqlalchemy.inspect(engine)
        self._tables = {t.lower() for t in self._inspector.get_table_names(schema=schema)}

    def has(self, table: str) -> bool:
        return table in self._tables

    def tables(self) -> set[str]:
        return set(self._tables)

    def columns(self, table: str) -> list[str]:
        """Column names (lower case), from an empty result: column reflection is not
        implemented alike by every dialect (duckdb-engine's fails on DuckDB 2)."""
        with self.engine.connect() as conn:
            result = conn.execute(self._sa.text(f"SELECT * FROM {self.name(table)} WHERE 1 = 0"))
            return [str(c).lower() for c in result.keys()]

    def name(self, table: str) -> str:
        """``table`` quoted and qualified by the schema."""
        quote = self.engine.dialect.identifier_preparer.quote
        return f"{quote(self.schema)}.{quote(table)}" if self.schema else quote(table)

    def query(self, sql: str, params: dict | None = None, expanding: Sequence[str] = ()) -> pd.DataFrame:
        """The whole result of a small query."""
        return pd.concat(list(self.stream(sql, params, expanding)) or [pd.DataFrame()], ignore_index=True)

    def stream(self, sql: str, params: dict | None = None, expanding: Sequence[str] = (),
               chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """The result of ``sql`` in DataFrames of at most ``chunk_rows`` rows (column names lower case)."""
        statement = self._sa.text(sql)
        if expanding:
            statement = statement.bindparams(*(self._sa.bindparam(name, expanding=True) for name in expanding))
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "duckdb":
                # DataFrame chunks straight from DuckDB's cursor (no Python object per value); no
                # stream_results here, so SQLAlchemy has buffered none of the rows
                result = conn.execute(statement, params or {})
                columns = [str(c).lower() for c in result.keys()]
                vectors = max(1, chunk_rows // 2048)  # DuckDB fetches in vectors of 2,048 rows
                while len(frame := result.cursor.fetch_df_chunk(vectors)):
                    frame.columns = columns
                    yield frame
                return
            # a server-side cursor where the driver has one (PostgreSQL); rows as plain tuples,
            # since building a DataFrame from SQLAlchemy Row objects costs a lookup per value
            result = conn.execution_options(stream_results=True).execute(statement, params or {})
            columns = [str(c).lower() for c in result.keys()]
            for rows in result.partitions(chunk_rows):
                yield pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns)

    # --- concepts ----------------------------------------------------------------------
    def concepts_by_code(self, vocabulary_id: str, codes: Sequence[str], *, concept_class: str | None = None,
                         names: Sequence[str] = ()) -> pd.DataFrame:
        """Concepts of ``vocabulary_id`` whose ``concept_code`` is in ``codes`` (or, when
        ``names`` are given, whose lower-case ``concept_name`` is one of them)."""
        codes, names = list(codes), [n.lower() for n in names]
        if not codes and not names:
            return pd.DataFrame(columns=["concept_id", "concept_code", "concept_name", "standard_concept"])
        where_class = "AND concept_class_id = :concept_class" if concept_class else ""
        match = " OR ".join(([" concept_code IN :codes"] if codes else []) + (["lower(concept_name) IN :names"] if names else []))
        sql = (f"SELECT concept_id, concept_code, concept_name, standard_concept FROM {self.name('concept')} "
               f"WHERE vocabulary_id = :vocabulary_id {where_class} AND ({match})")
        params = {"vocabulary_id": vocabulary_id, **({"codes": codes} if codes else {}), **({"names": names} if names else {})}
        if concept_class:
            params["concept_class"] = concept_class
        return self.query(sql, params, expanding=tuple(k for k in ("codes", "names") if k in params))

    def concepts_by_id(self, ids: Sequence[int]) -> pd.DataFrame:
        ids = [int(i) for i in ids]
        if not ids:
            return pd.DataFrame(columns=["concept_id", "vocabulary_id", "concept_code", "concept_name"])
        sql = (f"SELECT concept_id, vocabulary_id, concept_code, concept_name FROM {self.name('concept')} "
               "WHERE concept_id IN :ids")
        return self.query(sql, {"ids": ids}, expanding=("ids",))

    def descendants(self, ancestor_ids: Sequence[int]) -> pd.DataFrame:
        """``ancestor_concept_id, descendant_concept_id`` pairs below the given concepts,
        including each concept itself (as the CDM's ``concept_ancestor`` does)."""
        ids = [int(i) for i in ancestor_ids]
        if not ids:
            return pd.DataFrame(columns=["ancestor_concept_id", "descendant_concept_id"])
        sql = (f"SELECT ancestor_concept_id, descendant_concept_id FROM {self.name('concept_ancestor')} "
               "WHERE ancestor_concept_id IN :ids")
        pairs = self.query(sql, {"ids": ids}, expanding=("ids",))
        itself = pd.DataFrame({"ancestor_concept_id": ids, "descendant_concept_id": ids})
        return pd.concat([itself, pairs], ignore_index=True).astype("int64").drop_duplicates()
