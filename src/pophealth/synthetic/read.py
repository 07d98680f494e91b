"""Reading back a population directory written by :func:`write_population`."""

from __future__ import annotations

from pathlib import Path

from pophealth.contracts.schema import naive_timestamp
from pophealth.synthetic.population import Population

__all__ = ["read_population"]


def read_population(path, *, index_date) -> Population:
    """Read a population directory written by ``write_population`` into memory.

    Parameters
    ----------
    path : str or Path
        Directory with ``register``, ``events``, ``activity`` and ``outcomes``, each
        hive-partitioned by patient bucket.
    index_date : date-like
        The date the tables are relative to (always explicit).

    Returns
    -------
    Population
        Tables sorted by ``patient_id`` (stable), as :func:`make_population` gives them.

    Examples
    --------
    >>> import tempfile
    >>> from pophealth.synthetic import make_population, read_population, write_population
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write_population(d, 300, random_state=1, index_date="2025-04-01",
    ...                          progress=False)
    ...     back = read_population(d, index_date="2025-04-01")
    >>> mem = make_population(300, random_state=1, index_date="2025-04-01")
    >>> back.register["patient_id"].tolist() == mem.register["patient_id"].tolist()
    True
    """
    import pyarrow.dataset as ds  # loaded on first use: keeps ``import pophealth`` fast

    root = Path(path)
    frames = {}
    for name in ("register", "events", "activity", "outcomes"):
        table = ds.dataset(root / name, format="parquet", partitioning="hive").to_table()
        df = table.to_pandas().drop(columns=["bucket"], errors="ignore")
        frames[name] = df.sort_values("patient_id", kind="stable").reset_index(drop=True)
    return Population(register=frames["register"], events=frames["events"],
                      activity=frames["activity"],
                      outcomes=frames["outcomes"].set_index("patient_id"),
                      index_date=naive_timestamp(index_date))
