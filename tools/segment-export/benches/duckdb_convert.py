#!/usr/bin/env python3
"""DuckDB's side of the Parquet benchmark: converts NDJSON to Parquet (zstd)
and prints the seconds the conversion took (not counting Python start-up).

    duckdb_convert.py auto|columns IN.ndjson OUT.parquet

auto: every field, schema inferred by read_json_auto.
columns: the same 13 columns segment-export writes, raw line included."""
import sys
import time

import duckdb

mode, src, dst = sys.argv[1:4]
con = duckdb.connect()
con.execute("SET preserve_insertion_order = true")
if mode == "auto":
    query = f"SELECT * FROM read_json_auto('{src}', format='newline_delimited')"
else:
    query = f"""
    SELECT CASE WHEN json->>'delete' IS NOT NULL THEN 'delete' ELSE 'post' END AS kind,
           json->>'id_str' AS key,
           make_timestamptz(CAST(json->>'timestamp_ms' AS BIGINT) * 1000) AS time,
           CAST(json->>'id_str' AS BIGINT) AS id,
           strptime(json->>'created_at', '%a %b %d %H:%M:%S %z %Y') AS created_at,
           CAST(json->'user'->>'id_str' AS BIGINT) AS user_id,
           json->'user'->>'screen_name' AS screen_name,
           json->>'lang' AS lang,
           coalesce(json->'extended_tweet'->>'full_text', json->>'full_text', json->>'text') AS text,
           CAST(json->'retweeted_status'->>'id_str' AS BIGINT) AS retweeted_id,
           CAST(json->>'quoted_status_id_str' AS BIGINT) AS quoted_id,
           CAST(json->>'in_reply_to_status_id_str' AS BIGINT) AS in_reply_to_id,
           CAST(json AS VARCHAR) AS raw
    FROM read_ndjson_objects('{src}')"""
t = time.perf_counter()
con.execute(f"COPY ({query}) TO '{dst}' (FORMAT parquet, COMPRESSION zstd)")
print(time.perf_counter() - t)
