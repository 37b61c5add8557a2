#!/usr/bin/env python3
"""Reads a Hive-partitioned dataset of segment-export with pyarrow's dataset
reader, as an analyst would, over S3 or from a local directory, and checks
it against the unpartitioned export of the same range.

    python3 read_hive.py DATASET UNPARTITIONED.parquet HOUR ROWS_PER_HOUR_JSON

DATASET is BUCKET/PREFIX (read over S3: endpoint and keys from AWS_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, as the Rust test sets them) or a
local directory. Run by the Rust tests in hive.rs."""
import json
import os
import sys
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

dataset, flat, hour, per_hour = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])

if os.path.isdir(dataset):
    d = ds.dataset(dataset, partitioning="hive")
else:
    endpoint = urlparse(os.environ["AWS_ENDPOINT"])
    s3 = pafs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )
    d = ds.dataset(dataset, filesystem=s3, partitioning="hive")

t = d.to_table()
f = pq.read_table(flat)
assert t.num_rows == f.num_rows, (t.num_rows, f.num_rows)
# The same rows: ids (and keys) equal the unpartitioned export's, once each.
assert sorted(t.column("id").to_pylist()) == sorted(f.column("id").to_pylist())
assert sorted(t.column("key").to_pylist()) == sorted(f.column("key").to_pylist())
assert len(set(t.column("key").to_pylist())) == t.num_rows, "no row twice"
# The partition columns, and their values right for every row.
for name in ["stream", "date", "hour"]:
    assert name in t.schema.names, t.schema.names
for r in t.select(["time", "stream", "date", "hour"]).to_pylist():
    assert r["stream"] == "decahose", r
    assert str(r["date"]) == r["time"].strftime("%Y-%m-%d"), r
    assert int(r["hour"]) == r["time"].hour, r
# Rows per (date, hour), as the manifest says.
got = {}
for r in t.select(["date", "hour"]).to_pylist():
    k = f"{r['date']}/{int(r['hour']):02}"
    got[k] = got.get(k, 0) + 1
assert got == {k: v for k, v in per_hour.items() if v}, (got, per_hour)
# A filter on the partition column reads that hour only.
h = d.to_table(filter=ds.field("hour") == hour)
assert h.num_rows == sum(v for k, v in per_hour.items() if int(k[-2:]) == hour) > 0, h.num_rows
assert all(x.hour == hour for x in h.column("time").to_pylist())
print(f"ok: {t.num_rows} rows, {len(got)} partitions, hour {hour}: {h.num_rows} rows")
