#!/usr/bin/env python3
"""Checks the expected results of .slt files against PostgreSQL.

Runs every statement and query of the given files on a PostgreSQL server and compares each
query's result with the one in the file, formatted the way the freshet harness prints values
(floats as freshet prints them, whole ones without `.0`, booleans true/false, NULL, the empty string as (empty)) and
otherwise as PostgreSQL prints them. Statements expected to fail must fail in PostgreSQL too
(the error text is not compared: the regexes are freshet's). Records marked `onlyif freshet`
(or anything but postgres) and EXPLAIN queries are skipped. `--fill` writes PostgreSQL's
results into the files instead of reporting differences (review the diff afterwards); `-v`
also prints PostgreSQL's error messages.

    pip install psycopg2-binary
    PG_DSN="host=127.0.0.1 port=5432 user=postgres dbname=postgres" \
        python3 dataflows/tests/slt/pg_expected.py dataflows/tests/slt/*.slt

Each file runs in a fresh schema `slt_check` (dropped and created again), nothing else is
touched. Expected results assume the C collation for text ordering.
"""
import os
import sys
from decimal import Decimal
import psycopg2, psycopg2.extensions

RAW_OIDS = (16, 700, 701, 1700, 1114, 1184, 1082, 1186, 1083)
RAW = psycopg2.extensions.new_type(RAW_OIDS, "RAW", lambda v, cur: v)
psycopg2.extensions.register_type(RAW)
INT_OIDS = {20, 21, 23}
FLOAT_OIDS = {700, 701}
NUM_OIDS = {1700}


def fmt_float(text):
    x = float(text)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    r = repr(x)
    if "e" in r:
        r = "{:f}".format(Decimal(r))
    return r


def fmt(v, oid, t):
    if v is None:
        return "NULL"
    if oid == 16:
        return "true" if v == "t" else "false"
    if oid in FLOAT_OIDS:
        return fmt_float(v)
    if oid in NUM_OIDS:
        if t == "I":
            d = Decimal(v)
            assert d == d.to_integral_value(), v
            return str(int(d))
        return fmt_float(v)
    s = str(v)
    return "(empty)" if s == "" else s


def normalize(s):
    body = s.lstrip()
    lead = s[: len(s) - len(body)]
    return lead + " ".join(body.split())


def type_ok(t, oid):
    if t == "I":
        return oid in INT_OIDS or oid in NUM_OIDS
    if t == "R":
        return oid in FLOAT_OIDS or oid in NUM_OIDS
    return oid not in INT_OIDS and oid not in FLOAT_OIDS and oid not in NUM_OIDS


def parse(lines):
    """Yields records as dicts with line indices."""
    i = 0
    n = len(lines)
    while i < n:
        if lines[i].strip() == "" or lines[i].startswith("#"):
            i += 1
            continue
        start = i
        conds = []
        while lines[i].startswith(("onlyif", "skipif")):
            conds.append(lines[i].split())
            i += 1
        header = lines[i].split()
        hline = i
        i += 1
        sql = []
        while i < n and lines[i].strip() != "" and lines[i] != "----":
            sql.append(lines[i])
            i += 1
        res_start = res_end = None
        if i < n and lines[i] == "----":
            i += 1
            res_start = i
            while i < n and lines[i] != "":
                i += 1
            res_end = i
        yield dict(start=start, hline=hline, conds=conds, header=header, sql="\n".join(sql),
                   res_start=res_start, res_end=res_end)


def skipped(conds):
    for c in conds:
        if c[0] == "onlyif" and c[1] != "postgres":
            return True
        if c[0] == "skipif" and c[1] == "postgres":
            return True
    return False


def run(path, fill, conn):
    lines = open(path).read().split("\n")
    cur = conn.cursor()
    cur.execute("DROP SCHEMA IF EXISTS slt_check CASCADE; CREATE SCHEMA slt_check; SET search_path TO slt_check")
    problems = 0
    replacements = []
    for r in parse(lines):
        h = r["header"]
        loc = f"{path}:{r['hline'] + 1}"
        if h[0] in ("halt",):
            break
        if h[0] not in ("statement", "query"):
            continue
        if skipped(r["conds"]):
            continue
        sql = r["sql"]
        if h[0] == "query" and sql.lstrip().upper().startswith("EXPLAIN"):
            continue
        err = None
        try:
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else None
        except Exception as e:
            err = str(e).strip().split("\n")[0]
        if h[0] == "statement":
            if h[1] == "error":
                if err is None:
                    print(f"{loc}: PG succeeded but error expected: {sql}")
                    problems += 1
                else:
                    if VERBOSE:
                        print(f"{loc}: ok (error) PG: {err}")
            elif err is not None:
                print(f"{loc}: PG error: {err}\n  {sql}")
                problems += 1
            elif h[1] == "count" and cur.rowcount != int(h[2]):
                print(f"{loc}: PG count {cur.rowcount} != {h[2]}")
                problems += 1
            continue
        # query
        if h[1] == "error":
            if err is None:
                print(f"{loc}: PG succeeded but error expected: {sql}")
                problems += 1
            else:
                if VERBOSE:
                    print(f"{loc}: ok (error) PG: {err}")
            continue
        if err is not None:
            print(f"{loc}: PG error: {err}\n  {sql}")
            problems += 1
            continue
        types = h[1]
        sort = h[2] if len(h) > 2 else None
        oids = [d.type_code for d in cur.description]
        if len(oids) != len(types) or not all(type_ok(t, o) for t, o in zip(types, oids)):
            print(f"{loc}: PG column types {oids} vs {types}")
            problems += 1
        out = [[fmt(v, o, t) for v, o, t in zip(row, oids, types)] for row in rows]
        if sort == "rowsort":
            out.sort()
        elif sort == "valuesort":
            out = sorted([[v] for row in out for v in row])
        got = [" ".join(row) for row in out]
        expected = lines[r["res_start"]:r["res_end"]] if r["res_start"] is not None else []
        if [normalize(g) for g in got] != [normalize(e) for e in expected]:
            if fill:
                replacements.append((r, got))
            else:
                print(f"{loc}: mismatch\n  SQL: {sql}\n  expected: {expected}\n  PG:       {got}")
                problems += 1
    if fill and replacements:
        for r, got in sorted(replacements, key=lambda x: -x[0]["hline"]):
            if r["res_start"] is None:
                end = r["hline"] + 1 + len(r["sql"].split("\n"))
                lines[end:end] = ["----"] + got
            else:
                lines[r["res_start"]:r["res_end"]] = got
        open(path, "w").write("\n".join(lines))
        print(f"{path}: filled {len(replacements)} results")
    return problems


VERBOSE = "-v" in sys.argv
if __name__ == "__main__":
    fill = "--fill" in sys.argv
    files = [a for a in sys.argv[1:] if not a.startswith("-")]
    conn = psycopg2.connect(os.environ.get("PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"))
    conn.autocommit = True
    total = 0
    for f in files:
        total += run(f, fill, conn)
    print(f"{total} problems")
