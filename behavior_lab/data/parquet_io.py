"""Episode parquet files: vector columns as fixed-size float32 lists, read back as (T, D) arrays.

Reading checks what training silently depends on: the file opens, the column exists, every row has
the expected width, and there is no NaN/inf. Every error names the file, the column and the row.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from behavior_lab.data.atomic import atomic_path
from behavior_lab.data.layout import DatasetError


def vector_column(values: np.ndarray) -> pa.FixedSizeListArray:
    arr = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])


def write_episode_table(path: str | os.PathLike, columns: dict[str, np.ndarray]) -> None:
    """(T, D) arrays become fixed-size list columns, (T,) arrays scalar columns; written atomically."""
    fields = {}
    for name, values in columns.items():
        values = np.asarray(values)
        fields[name] = vector_column(values) if values.ndim == 2 else pa.array(values)
    table = pa.table(fields)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: episode parquet file missing")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a readable parquet file ({e}); it may be truncated") from e
    if columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(schema.names)}"
            )
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: reading parquet failed ({e}); the file may be truncated") from e


def column_to_array(table: pa.Table, name: str, dim: int | None, path: str | os.PathLike) -> np.ndarray:
    """A list / fixed-size-list column -> (T, dim) float32, or a scalar column -> (T,)."""
    col = table.column(name).combine_chunks()
    typ = col.type
    if pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DatasetError(f"{path}: column {name!r} row {row} is null; expected a {dim}-D vector")
        if pa.types.is_fixed_size_list(typ):
            width = typ.list_size
            flat = col.flatten()
        else:
            lengths = col.value_lengths().to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(lengths != (dim if dim is not None else lengths[0]))
            if bad.size:
                r = int(bad[0])
                raise DatasetError(
                    f"{path}: column {name!r} row {r} has {int(lengths[r])} values; expected {dim if dim is not None else lengths[0]}"
                )
            width = int(lengths[0]) if len(lengths) else (dim or 0)
            flat = col.flatten()
        if dim is not None and width != dim:
            raise DatasetError(f"{path}: column {name!r} holds {width}-D vectors; expected {dim}-D")
        values = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return values.reshape(len(col), width)
    if dim is not None:
        raise DatasetError(f"{path}: column {name!r} has type {typ}; expected a list of {dim} float32")
    return col.to_numpy(zero_copy_only=False)


def check_finite(values: np.ndarray, name: str, source: str | os.PathLike) -> None:
    """Raise naming the first non-finite entry (row, dimension) of a (T, D) array."""
    finite = np.isfinite(values)
    if not finite.all():
        r, d = (int(i) for i in np.argwhere(~finite)[0])
        n_bad = int((~finite).sum())
        raise DatasetError(
            f"{source}: {name!r} has {n_bad} non-finite value(s) (first: row {r}, dim {d} = {values[r, d]}); "
            "expected finite floats"
        )
