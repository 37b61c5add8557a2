#!/usr/bin/env python3
"""Reads a segment-export Parquet file with pyarrow and DuckDB, as an
analyst would, and checks its columns: types, order, and that the typed
columns agree with the raw JSON.

    python3 read_parquet.py FILE.parquet EXPECTED_ROWS

Run by the Rust test `parquet_is_read_by_pyarrow_and_duckdb` (CI installs
pyarrow and duckdb with `python3 -m pip install pyarrow duckdb`)."""
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

path, expected = sys.argv[1], int(sys.argv[2])

# pyarrow
t = pq.read_table(path)
assert t.num_rows == expected, (t.num_rows, expected)
want = {
    "kind": pa.string(),
    "key": pa.string(),
    "time": pa.timestamp("ms", tz="UTC"),
    "id": pa.int64(),
    "created_at": pa.timestamp("ms", tz="UTC"),
    "user_id": pa.int64(),
    "screen_name": pa.string(),
    "lang": pa.string(),
    "text": pa.string(),
    "retweeted_id": pa.int64(),
    "quoted_id": pa.int64(),
    "in_reply_to_id": pa.int64(),
    "raw": pa.string(),
}
assert t.schema.names == list(want), t.schema.names
for name, typ in want.items():
    assert t.schema.field(name).type == typ, (name, t.schema.field(name).type, typ)
rows = t.to_pylist()
times = [r["time"] for r in rows]
assert times == sorted(times), "rows are in time order"
for r in rows:
    doc = json.loads(r["raw"])
    if r["kind"] == "post":
        assert r["id"] == int(doc["id_str"]), r
        assert r["user_id"] == int(doc["user"]["id_str"]), r
        assert r["screen_name"] == doc["user"]["screen_name"], r
        assert r["lang"] == doc.get("lang"), r
        full = doc.get("extended_tweet", {}).get("full_text") or doc["text"]
        assert r["text"] == full, r
        assert int(r["time"].timestamp() * 1000) == int(doc["timestamp_ms"]), r
        assert r["created_at"].strftime("%a %b %d %H:%M:%S +0000 %Y") == doc["created_at"], r
    elif r["kind"] == "delete":
        assert r["id"] == int(doc["delete"]["status"]["id_str"]), r

# DuckDB, straight from the file
con = duckdb.connect()
n, kinds, ts_type, id_type, rich = con.execute(
    """SELECT count(*), count(DISTINCT kind), typeof(any_value(created_at)), typeof(any_value(id)),
              count(*) FILTER (WHERE retweeted_id IS NOT NULL AND quoted_id IS NOT NULL AND in_reply_to_id IS NOT NULL)
       FROM read_parquet(?)""",
    [path],
).fetchone()
assert n == expected, (n, expected)
assert ts_type == "TIMESTAMP WITH TIME ZONE", ts_type
assert id_type == "BIGINT", id_type
assert rich >= 1, rich
# The raw column is JSON DuckDB can query.
(mismatch,) = con.execute(
    "SELECT count(*) FROM read_parquet(?) WHERE kind = 'post' AND CAST(json_extract_string(raw, '$.id_str') AS BIGINT) <> id",
    [path],
).fetchone()
assert mismatch == 0, mismatch
print(f"ok: {n} rows read by pyarrow {pa.__version__} and duckdb {duckdb.__version__}")
