#!/usr/bin/env python3
"""Randomized differential tester: freshet's incrementally maintained views vs PostgreSQL.

Generates random SELECT queries from the subset of SQL that docs/sql.md describes, creates each
as a view in a freshet server it starts itself, applies random INSERT / UPDATE / DELETE steps
to the tables in both systems, and after every step compares every live view (as a multiset of
rows) and the tables themselves with PostgreSQL evaluating the same query from scratch. Each
query is also run ad hoc (a plain SELECT) in freshet at least once. A mismatch is shrunk (data,
steps, then the query) and written to FINDINGS_DIR/NNN.txt; findings whose minimized query uses
the same constructs and fails the same way are counted as duplicates.

    su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgdata -o '-p 5433 -k /tmp' -l /tmp/pg.log start"
    python3 dataflows/tests/fuzz/pg_fuzz.py --seed 1 --queries 300 --workers 2
    python3 dataflows/tests/fuzz/pg_fuzz.py --seed 2 --minutes 20 --workers 3 --port 18081

Options: --binary (default target/release/freshet), --port, --workers, --seed, --queries (accepted
views to test), --minutes (time limit), --views-per-round, --steps (DML steps per round),
--shrink-secs (time budget per finding), --findings-dir (default /tmp/fuzz-findings), --pg-dsn,
--avoid-known (skip the shapes of bugs already found), … (see --help and README.md).
PostgreSQL objects live in a schema fuzz_<port> (dropped and created again). Floats are compared
with a relative tolerance of 1e-9; errors on both sides count as agreement.
"""
import argparse
import collections
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback

import psycopg2
import psycopg2.extensions
import requests

RAW_OIDS = (16, 700, 701, 1700, 1114, 1184, 1082, 1186, 1083)
RAW = psycopg2.extensions.new_type(RAW_OIDS, "RAW", lambda v, cur: v)
psycopg2.extensions.register_type(RAW)

INT, FLT, TXT, BOOL, TS, NUM, DEC = "int", "float", "text", "bool", "ts", "num", "dec"
# NUM: sum/avg of bigints (numeric in PostgreSQL, bigint/double in freshet): only compared and
# projected, never divided.
# DEC: numeric columns and expressions (exact decimals on both sides).
SQLTYPE = {INT: "bigint", FLT: "double precision", TXT: "text", BOOL: "boolean", TS: "timestamp",
           DEC: "numeric"}
TABLES = {
    "t1": [("a", INT), ("b", INT), ("c", FLT), ("d", TXT), ("e", BOOL), ("f", TS), ("g", DEC)],
    "t2": [("k", INT), ("x", INT), ("y", FLT), ("s", TXT), ("p", BOOL), ("ts", TS), ("m", DEC)],
    "t3": [("k", INT), ("v", INT), ("w", TXT)],
}
INT_VALS = [-2, -1, 0, 1, 2, 3, 4, 5]
FLT_VALS = [-2.5, -1.0, 0.0, 0.5, 1.0, 1.5, 2.25, 3.0, 4.5]
TXT_VALS = ["a", "b", "ab", "ba", "A", "B", "", "a b", "abc"]
TS_VALS = ["2024-01-01 00:00:00", "2024-01-01 12:30:00", "2024-01-02 00:00:00",
           "2023-12-31 23:59:59", "2024-01-01 00:00:00.5"]
DEC_VALS = ["-2.5", "-1", "0", "0.1", "0.25", "1.5", "3", "10.05", "0.001"]
LIKE_PATS = ["'a%'", "'%b'", "'_'", "'a_%'", "'%'", "'%a%'", "'A%'", "''"]


def val_sql(v, ty):
    if v is None:
        return "NULL"
    if ty == INT:
        return str(v)
    if ty == FLT:
        return repr(float(v))
    if ty == TXT:
        return "'" + v.replace("'", "''") + "'"
    if ty == BOOL:
        return "true" if v else "false"
    if ty == TS:
        return f"TIMESTAMP '{v}'"
    if ty == DEC:
        return f"CAST('{v}' AS numeric)"
    raise ValueError(ty)


BARE_DECIMALS = False


def lit_sql(v, ty):
    s = val_sql(v, ty)
    if ty == FLT and v is not None and not BARE_DECIMALS:
        return f"CAST({s} AS double precision)"
    if ty in (INT, FLT) and v is not None and v < 0:
        return f"({s})"
    if v is None:
        return f"CAST(NULL AS {SQLTYPE[ty]})"
    return s


DEFAULT_LIT = {INT: "1", NUM: "1", FLT: "CAST(1.5 AS double precision)", TXT: "'a'", BOOL: "true",
               DEC: "CAST('1.5' AS numeric)",
               TS: "TIMESTAMP '2024-01-01 00:00:00'"}


# ------------------------------------------------------------------------------------------
# AST

class N:
    __slots__ = ("tag", "ty", "f")

    def __init__(self, tag, ty=None, **f):
        self.tag = tag
        self.ty = ty
        self.f = f

    def copy(self, **upd):
        n = N(self.tag, self.ty, **self.f)
        n.f.update(upd)
        return n


def col(sql, ty):
    return N("col", ty, sql=sql)


def lit(sql, ty):
    return N("lit", ty, sql=sql)


def fn(fmt, ty, *args):
    return N("fn", ty, fmt=fmt, args=list(args))


def agg(fmt, ty, *args):
    return N("agg", ty, fmt=fmt, args=list(args))


def AND(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return fn("({0} AND {1})", BOOL, a, b)


def tie_sensitive(n):
    """Window functions whose value can differ between rows that are equal in every other column
    (so two of them in one SELECT can pair up differently in PostgreSQL and freshet)."""
    if n.tag != "win":
        return False
    if n.f["fn"] in ("row_number", "lag", "lead", "ntile"):
        return True
    return bool(n.f["frame"]) and n.f["frame"].startswith("ROWS")


def has_col(n):
    if n.tag == "col":
        return True
    return any(has_col(c) for _, _, c in child_slots(n))


def base_cols_only(n):
    """Only columns of base tables (aliases x…), at least one."""
    cols = []

    def walk(m):
        if m.tag == "col":
            cols.append(m.f["sql"])
        for _, _, c in child_slots(m):
            walk(c)
    walk(n)
    return bool(cols) and all(re.match(r"^x\d+\.", c) for c in cols)


def sane(q):
    """Rules the shrinker must keep: grouping-set keys over base-table columns (PostgreSQL 15
    does not null constant or pulled-up grouping expressions in grouping sets), at most one
    tie-sensitive window function per SELECT."""
    if q.tag == "select":
        g = q.f.get("group")
        if g is not None and g.f["kind"] != "plain" and not all(base_cols_only(k) for k in g.f["keys"]):
            return False
        if sum(1 for i in q.f["items"] if tie_sensitive(i)) > 1:
            return False
    return all(sane(c) for _, _, c in child_slots(q))


def ncols(q):
    if q.tag == "select":
        return len(q.f["items"])
    return ncols(q.f["l"])


def R(n, ctx=None):
    t = n.tag
    if t in ("col", "lit"):
        return n.f["sql"]
    if t in ("fn", "agg", "sub"):
        return n.f["fmt"].format(*[R(a, ctx) for a in n.f["args"]])
    if t == "win":
        return render_win(n, ctx)
    if t == "select":
        return render_select(n)
    if t == "setop":
        s = f"({R(n.f['l'])}) {n.f['op']} ({R(n.f['r'])})"
        return s + render_order_limit(n, ncols(n))
    if t == "table":
        return f"{n.f['name']} AS {n.f['alias']}"
    if t == "join":
        k = n.f["kind"]
        if k == ",":
            return f"{R(n.f['l'])}, {R(n.f['r'])}"
        if k == "CROSS JOIN":
            return f"{R(n.f['l'])} CROSS JOIN {R(n.f['r'])}"
        if n.f.get("using"):
            return f"{R(n.f['l'])} {k} {R(n.f['r'])} USING ({n.f['using']})"
        return f"{R(n.f['l'])} {k} {R(n.f['r'])} ON {R(n.f['on'])}"
    if t == "subq":
        lat = "LATERAL " if n.f["lateral"] else ""
        return f"{lat}({R(n.f['q'])}) AS {n.f['alias']}"
    if t == "gs":
        return f"generate_series({R(n.f['a'])}, {R(n.f['b'])}) AS {n.f['alias']}(i)"
    if t == "cte":
        return f"{n.f['name']} AS ({R(n.f['q'])})"
    if t == "rawq":
        return n.f["sql"]
    if t == "values":
        return f"(VALUES {n.f['rows']}) AS {n.f['alias']}(c0, c1)"
    raise ValueError(t)


def render_order_limit(n, k):
    s = ""
    if n.f.get("order"):
        dirs = n.f["order"]
        if n.f.get("order_exprs") and n.tag == "select":
            keys = [R(it) for it in n.f["items"]]
        else:
            keys = [str(i + 1) for i in range(k)]
        s += " ORDER BY " + ", ".join(f"{keys[i]} {dirs[i % len(dirs)]}" for i in range(k))
        if n.f.get("limit") is not None:
            s += f" LIMIT {n.f['limit']}"
            if n.f.get("offset"):
                s += f" OFFSET {n.f['offset']}"
    return s


def render_win(n, ctx):
    base, btypes = ctx["base"], ctx["types"]
    fname = n.f["fn"]
    a = None
    aty = None
    if n.f["arg"] is not None and base:
        i = min(n.f["arg"], len(base) - 1)
        a, aty = base[i], btypes[i]
    needs_arg = fname in ("lag", "lead", "first_value", "last_value", "nth_value", "sum", "min",
                          "max", "avg", "count")
    if needs_arg and a is None:
        fname = "count*"
    parts = [base[i] for i in n.f["part"] if i < len(base)]
    ordered = n.f["ordered"] and base
    spec = []
    if parts:
        spec.append("PARTITION BY " + ", ".join(parts))
    if ordered:
        dirs = n.f["dirs"]
        spec.append("ORDER BY " + ", ".join(f"{b} {dirs[i % len(dirs)]}" for i, b in enumerate(base)))
        fr = n.f["frame"]
        if fr:
            if fr.startswith("RANGE BETWEEN 1 PRECEDING") and not (len(base) == 1 and btypes[0] in (INT, FLT)):
                fr = None
            if fr:
                spec.append(fr)
    if fname in ("lag", "lead"):
        extra = n.f.get("extra") or ""
        if extra == "default":
            extra = ", 1, " + DEFAULT_LIT.get(aty, "1")
        call = f"{fname}({a}{extra})"
    elif fname == "nth_value":
        call = f"nth_value({a}, 2)"
    elif fname == "ntile":
        call = f"ntile({n.f.get('extra') or 2})"
    elif fname == "count*":
        call = "count(*)"
    elif needs_arg:
        call = f"{fname}({a})"
    else:
        call = f"{fname}()"
    return f"{call} OVER ({' '.join(spec)})"


def render_select(n):
    f = n.f
    out = ""
    if f.get("ctes"):
        rec = "RECURSIVE " if any(c.f["q"].tag == "rawq" for c in f["ctes"]) else ""
        out += "WITH " + rec + ", ".join(R(c) for c in f["ctes"]) + " "
    items = f["items"]
    base = [i for i in items if i.tag != "win"]
    ctx = {"base": [R(b) for b in base], "types": [b.ty for b in base]}
    d = f.get("distinct")
    if d == "all":
        out += "SELECT DISTINCT "
    elif isinstance(d, int) and d > 0:
        k = min(d, len(items))
        out += "SELECT DISTINCT ON (" + ", ".join(str(i + 1) for i in range(k)) + ") "
    else:
        out += "SELECT "
    out += ", ".join(f"{R(it, ctx)} AS c{i}" for i, it in enumerate(items))
    if f.get("frm") is not None:
        out += " FROM " + R(f["frm"])
    if f.get("where") is not None:
        out += " WHERE " + R(f["where"])
    g = f.get("group")
    if g is not None and g.f["keys"]:
        keys = [R(k) for k in g.f["keys"]]
        kind = g.f["kind"]
        if kind == "plain" or len(keys) == 1 and kind == "mixed":
            gs = ", ".join(keys)
        elif kind == "rollup":
            gs = f"ROLLUP ({', '.join(keys)})"
        elif kind == "cube":
            gs = f"CUBE ({', '.join(keys)})"
        elif kind == "sets":
            sets = []
            for s in g.f["sets"]:
                sets.append("(" + ", ".join(keys[i] for i in s if i < len(keys)) + ")")
            gs = f"GROUPING SETS ({', '.join(sets)})"
        else:  # mixed
            gs = f"{keys[0]}, ROLLUP ({', '.join(keys[1:])})"
        out += " GROUP BY " + gs
    if f.get("having") is not None:
        out += " HAVING " + R(f["having"])
    out += render_order_limit(n, len(items))
    return out


# ------------------------------------------------------------------------------------------
# shrinking candidates

def local_shrinks(n):
    t = n.tag
    f = n.f
    if t == "select":
        if f.get("frm") is not None and f["frm"].tag == "join":
            yield n.copy(frm=f["frm"].f["l"])
            yield n.copy(frm=f["frm"].f["r"])
        for i in range(len(f.get("ctes") or [])):
            yield n.copy(ctes=f["ctes"][:i] + f["ctes"][i + 1:])
        if f.get("where") is not None:
            yield n.copy(where=None)
        if f.get("having") is not None:
            yield n.copy(having=None)
        if f.get("group") is not None and f["group"].f["kind"] != "plain":
            yield n.copy(group=f["group"].copy(kind="plain"))
        if f.get("group") is not None and len(f["group"].f["keys"]) > 1:
            ks = f["group"].f["keys"]
            for i in range(len(ks)):
                yield n.copy(group=f["group"].copy(keys=ks[:i] + ks[i + 1:],
                                                  sets=[[j - (j > i) for j in s if j != i] for s in f["group"].f.get("sets") or []]))
        if f.get("group") is not None:
            yield n.copy(group=None)
        if f.get("distinct"):
            yield n.copy(distinct=None)
        if f.get("offset"):
            yield n.copy(offset=None)
        if f.get("limit") is not None:
            yield n.copy(limit=None, order=None, offset=None)
        items = f["items"]
        if len(items) > 1:
            for i in range(len(items)):
                yield n.copy(items=items[:i] + items[i + 1:])
    elif t == "setop":
        yield f["l"]
        yield f["r"]
        if f.get("limit") is not None:
            yield n.copy(limit=None, order=None, offset=None)
        if f["op"] != "UNION ALL":
            yield n.copy(op="UNION ALL")
    elif t == "join":
        yield f["l"]
        yield f["r"]
        if f["kind"] not in ("JOIN", ",", "CROSS JOIN"):
            yield n.copy(kind="JOIN")
    elif t in ("fn", "sub", "agg", "win"):
        if t == "fn" or t == "sub":
            for a in f.get("args", []):
                if a.tag not in ("select", "setop") and a.ty == n.ty:
                    yield a
        if t != "agg":
            yield lit(DEFAULT_LIT[n.ty], n.ty)
        if t == "win":
            if f["part"]:
                yield n.copy(part=[])
            if f["frame"]:
                yield n.copy(frame=None)
        if t == "agg" and n.ty == INT and "count(*)" not in f["fmt"]:
            yield agg("count(*)", INT)
    elif t == "col" and n.ty is not None and n.ty != NUM:
        yield lit(DEFAULT_LIT[n.ty], n.ty)


def child_slots(n):
    for k, v in n.f.items():
        if isinstance(v, N):
            yield k, None, v
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, N):
                    yield k, i, x


def candidates(n):
    for c in local_shrinks(n):
        yield c
    for k, i, ch in list(child_slots(n)):
        for cc in candidates(ch):
            if i is None:
                yield n.copy(**{k: cc})
            else:
                lst = list(n.f[k])
                lst[i] = cc
                yield n.copy(**{k: lst})


# ------------------------------------------------------------------------------------------
# generator

class Gen:
    def __init__(self, rng, opts):
        self.r = rng
        self.opts = opts
        self.alias_n = 0
        self.no_str_order = False

    def ch(self, p):
        return self.r.random() < p

    def pick(self, xs):
        return self.r.choice(xs)

    def wpick(self, pairs):
        tot = sum(w for _, w in pairs)
        x = self.r.random() * tot
        for v, w in pairs:
            x -= w
            if x < 0:
                return v
        return pairs[-1][0]

    def alias(self, p):
        self.alias_n += 1
        return f"{p}{self.alias_n}"

    # ---- values and literals
    def value(self, ty, null_p=0.15):
        if self.ch(null_p):
            return None
        return self.pick({INT: INT_VALS, FLT: FLT_VALS, TXT: TXT_VALS, BOOL: [True, False], TS: TS_VALS,
                          DEC: DEC_VALS}[ty])

    def row(self, t):
        return tuple(self.value(ty) for _, ty in TABLES[t])

    def lit(self, ty):
        if ty == NUM:
            ty = INT
        v = self.value(ty, null_p=0.05)
        return lit(lit_sql(v, ty), ty)

    def nzlit(self, ty):
        if ty == INT:
            return lit(self.pick(["2", "3", "(-2)", "1"]), INT)
        return lit(lit_sql(self.pick([2.0, 4.0, 0.5, -2.0]), FLT), FLT)

    # ---- expressions
    def expr(self, ty, scope, d, sub=False, safe=False):
        cols = [c for c in scope if c.ty == ty]
        if d <= 0 or self.ch(0.3):
            if cols and self.ch(0.85):
                return self.pick(cols)
            if ty == BOOL and self.ch(0.8):
                others = [c for c in scope if c.ty in (INT, FLT, TXT, TS)]
                if others:
                    c = self.pick(others)
                    return fn(f"({{0}} {self.pick(['=', '<', '>=', '<>'])} {{1}})", BOOL, c, self.lit(c.ty))
            return self.lit(ty)
        e = lambda t, dd=d - 1: self.expr(t, scope, dd, sub, safe)
        if ty == NUM:
            return self.pick(cols) if cols else self.lit(INT)
        if ty == BOOL:
            return self.bool_expr(scope, d, sub, safe)
        if sub and self.ch(0.08) and ty in (INT, TXT):
            return self.scalar_sub(ty, scope)
        common = [
            (lambda: fn("CASE WHEN {0} THEN {1} ELSE {2} END", ty, e(BOOL), e(ty), e(ty)), 2),
            (lambda: fn("CASE WHEN {0} THEN {1} END", ty, e(BOOL), e(ty)), 1),
            (lambda: fn("coalesce({0}, {1})", ty, e(ty), e(ty)), 2),
            (lambda: fn("nullif({0}, {1})", ty, e(ty), e(ty)), 1),
            (lambda: fn(self.pick(["greatest({0}, {1})", "least({0}, {1})"]), ty, e(ty), e(ty)), 1),
        ]
        if ty == INT:
            def div():
                if not safe and self.ch(self.opts.div_col_p):
                    return fn(self.pick(["({0} / {1})", "({0} % {1})"]), INT, e(INT), e(INT))
                return fn(self.pick(["({0} / {1})", "({0} % {1})", "mod({0}, {1})"]), INT, e(INT), self.nzlit(INT))
            prods = [
                (lambda: fn(self.pick(["({0} + {1})", "({0} - {1})"]), INT, e(INT), e(INT)), 4),
                (lambda: fn("({0} * {1})", INT, e(INT, 0), e(INT, 0)), 2),
                (div, 2),
                (lambda: fn(self.pick(["abs({0})", "(- {0})"]), INT, e(INT)), 1),
                (lambda: fn("CASE {0} WHEN {1} THEN {2} ELSE {3} END", INT, e(INT), self.lit(INT), e(INT), e(INT)), 1),
                (lambda: fn("length({0})", INT, e(TXT)), 1),
                (lambda: fn("strpos({0}, {1})", INT, e(TXT), e(TXT)), 0.5),
                (lambda: fn("CAST({0} AS bigint)", INT, e(FLT)), 1),
                (lambda: fn("CAST(date_part('hour', {0}) AS bigint)", INT, e(TS)), 0.3),
            ] + common
        elif ty == FLT:
            def fdiv():
                if not safe and self.ch(self.opts.div_col_p):
                    return fn("({0} / {1})", FLT, e(FLT), e(FLT))
                return fn("({0} / {1})", FLT, e(FLT), self.nzlit(FLT))
            prods = [
                (lambda: fn(self.pick(["({0} + {1})", "({0} - {1})"]), FLT, e(FLT), e(self.pick([FLT, INT]))), 4),
                (lambda: fn("({0} * {1})", FLT, e(FLT, 0), e(self.pick([FLT, INT]), 0)), 2),
                (fdiv, 1),
                (lambda: fn(self.pick(["abs({0})", "floor({0})", "ceil({0})", "round({0})", "(- {0})"]), FLT, e(FLT)), 2),
                (lambda: fn("CAST({0} AS double precision)", FLT, e(INT)), 1),
                (lambda: fn("date_part('hour', {0})", FLT, e(TS)), 0.5),
            ] + common
        elif ty == TXT:
            prods = [
                (lambda: fn("({0} || {1})", TXT, e(TXT), e(TXT)), 3),
                (lambda: fn(self.pick(["lower({0})", "upper({0})", "trim({0})", "reverse({0})",
                                       "substr({0}, 1, 2)", "substr({0}, 2)", "left({0}, 1)", "right({0}, 1)",
                                       "replace({0}, 'a', 'x')", "lpad({0}, 3, '*')", "split_part({0}, ' ', 1)",
                                       "repeat({0}, 2)"]), TXT, e(TXT)), 4),
                (lambda: fn("concat({0}, {1})", TXT, e(TXT), e(TXT)), 1),
                (lambda: fn("CAST({0} AS text)", TXT, e(INT)), 1),
                (lambda: fn("CAST({0} AS text)", TXT, e(self.pick([BOOL, FLT, TS]))), 0.3),
            ] + common
        elif ty == DEC:
            def ddiv():
                if not safe and self.ch(self.opts.div_col_p):
                    return fn(self.pick(["({0} / {1})", "({0} % {1})"]), DEC, e(DEC), e(DEC))
                return fn(self.pick(["({0} / {1})", "({0} % {1})"]), DEC, e(DEC),
                          lit(self.pick(["CAST('0.5' AS numeric)", "CAST('3' AS numeric)", "2"]), DEC))
            prods = [
                (lambda: fn(self.pick(["({0} + {1})", "({0} - {1})"]), DEC, e(DEC), e(self.pick([DEC, INT]))), 4),
                (lambda: fn("({0} * {1})", DEC, e(DEC, 0), e(self.pick([DEC, INT]), 0)), 2),
                (ddiv, 1),
                (lambda: fn(self.pick(["abs({0})", "floor({0})", "ceil({0})", "round({0})", "round({0}, 1)",
                                       "(- {0})", "sign({0})"]), DEC, e(DEC)), 2),
                (lambda: fn("CAST({0} AS numeric)", DEC, e(INT)), 1),
            ] + common
        elif ty == TS:
            prods = [
                (lambda: fn(self.pick(["({0} + INTERVAL '1 day')", "({0} - INTERVAL '90 minutes')",
                                       "({0} + INTERVAL '30 seconds')"]), TS, e(TS)), 3),
                (lambda: fn(self.pick(["date_trunc('day', {0})", "date_trunc('hour', {0})"]), TS, e(TS)), 2),
            ] + common
        else:
            raise ValueError(ty)
        return self.wpick(prods)()

    def cmp_type(self, scope):
        tys = [c.ty for c in scope if c.ty != BOOL] or [INT]
        return self.pick(tys) if self.ch(0.85) else self.pick([INT, FLT, TXT, TS])

    def bool_expr(self, scope, d, sub, safe):
        e = lambda t, dd=d - 1: self.expr(t, scope, dd, sub, safe)

        def cmp():
            ty = self.cmp_type(scope)
            op = self.pick(["=", "<>", "<", "<=", ">", ">=", "="])
            if ty == NUM:
                return fn(f"({{0}} {op} {{1}})", BOOL, e(NUM), self.lit(INT))
            return fn(f"({{0}} {op} {{1}})", BOOL, e(ty), e(ty))

        def inlist():
            ty = self.pick([t for t in (INT, TXT, FLT) if any(c.ty == t for c in scope)] or [INT])
            vals = [val_sql(self.value(ty, 0.1), ty) for _ in range(self.r.randint(1, 4))]
            neg = "NOT " if self.ch(0.3) else ""
            return fn(f"({{0}} {neg}IN ({', '.join(vals)}))", BOOL, e(ty))

        def between():
            ty = self.pick([INT, FLT, TS, TXT])
            neg = "NOT " if self.ch(0.25) else ""
            return fn(f"({{0}} {neg}BETWEEN {{1}} AND {{2}})", BOOL, e(ty), self.lit(ty), self.lit(ty))

        def like():
            op = self.pick(["LIKE", "LIKE", "NOT LIKE", "ILIKE"])
            return fn(f"({{0}} {op} {self.pick(LIKE_PATS)})", BOOL, e(TXT))

        prods = [
            (cmp, 6),
            (lambda: fn(self.pick(["({0} AND {1})", "({0} OR {1})"]), BOOL, e(BOOL), e(BOOL)), 3),
            (lambda: fn("(NOT {0})", BOOL, e(BOOL)), 1),
            (lambda: fn(self.pick(["({0} IS NULL)", "({0} IS NOT NULL)"]), BOOL, e(self.cmp_type(scope))), 2),
            (inlist, 2),
            (between, 1),
            (like, 1.5),
            (lambda: (lambda ty: fn(self.pick(["({0} IS DISTINCT FROM {1})", "({0} IS NOT DISTINCT FROM {1})"]),
                                    BOOL, e(ty), e(ty)))(self.cmp_type(scope)), 1),
            (lambda: fn(self.pick(["({0} IS TRUE)", "({0} IS NOT FALSE)", "({0} IS FALSE)"]), BOOL, e(BOOL)), 0.5),
            (lambda: fn("CASE WHEN {0} THEN {1} ELSE {2} END", BOOL, e(BOOL), e(BOOL), e(BOOL)), 0.3),
        ]
        bcols = [c for c in scope if c.ty == BOOL]
        if bcols:
            prods.append((lambda: self.pick(bcols), 1))
        if sub:
            prods.append((lambda: self.sub_pred(scope), 0.6))
        return self.wpick(prods)()

    # ---- subqueries in expressions
    def inner_table(self):
        t = self.pick(list(TABLES))
        a = self.alias("y")
        return N("table", name=t, alias=a), [col(f"{a}.{c}", ty) for c, ty in TABLES[t]]

    def correlation(self, inner_scope, outer_scope, force=False):
        if not force and not self.ch(0.7):
            return None
        for _ in range(6):
            ty = self.pick([INT, INT, TXT])
            ins = [c for c in inner_scope if c.ty == ty]
            outs = [c for c in outer_scope if c.ty == ty and c.tag == "col"]
            if ins and outs:
                # unparenthesized: freshet refuses a correlation written `(inner = outer)`
                op = "=" if not self.ch(self.opts.corr_cmp_p) else self.pick(["<", ">=", "<>"])
                return fn("{0} %s {1}" % op, BOOL, self.pick(ins), self.pick(outs))
        return None

    def sub_pred(self, scope):
        tab, isc = self.inner_table()
        corr = self.correlation(isc, scope)
        extra = self.expr(BOOL, isc, 1) if self.ch(0.5) else None
        where = AND(corr, extra)
        kind = self.pick(["exists", "exists", "in", "in", "scalar"])
        if kind == "exists":
            q = N("select", items=[lit("1", INT)], frm=tab, where=where)
            return N("sub", BOOL, fmt=self.pick(["(EXISTS ({0}))", "(NOT EXISTS ({0}))"]), args=[q])
        if kind == "in":
            ty = self.pick([t for t in (INT, TXT) if any(c.ty == t for c in isc)])
            ic = self.pick([c for c in isc if c.ty == ty])
            q = N("select", items=[ic], frm=tab, where=where)
            neg = "NOT " if self.ch(0.35) else ""
            return N("sub", BOOL, fmt=f"({{1}} {neg}IN ({{0}}))", args=[q, self.expr(ty, scope, 1)])
        ty = self.pick([t for t in (INT, TXT) if any(c.ty == t for c in isc)])
        a, aty = self.sub_agg(ty, isc)
        q = N("select", items=[a], frm=tab, where=where)
        op = self.pick(["=", "<", ">=", "<>"])
        cty = INT if aty == NUM else aty
        return N("sub", BOOL, fmt=f"({{1}} {op} ({{0}}))", args=[q, self.expr(cty, scope, 1)])

    def sub_agg(self, ty, isc):
        c = self.pick([c for c in isc if c.ty == ty])
        if ty == INT:
            k = self.pick(["count(*)", "count({0})", "max({0})", "min({0})", "sum({0})"])
            t = NUM if k == "sum({0})" else INT
            return agg(k, t, c), t
        return agg(self.pick(["max({0})", "min({0})"]), TXT, c), TXT

    def scalar_sub(self, ty, scope):
        tab, isc = self.inner_table()
        if not any(c.ty == ty for c in isc):
            return self.lit(ty)
        corr = self.correlation(isc, scope)
        extra = self.expr(BOOL, isc, 1) if self.ch(0.3) else None
        a, aty = self.sub_agg(ty, isc)
        if aty != ty:
            a = agg("count(*)", INT)
        q = N("select", items=[a], frm=tab, where=AND(corr, extra))
        return N("sub", ty, fmt="({0})", args=[q])

    # ---- aggregates
    def aggregate(self, ty, scope, no_num=False):
        e = lambda t: self.expr(t, scope, 1)
        filt = ""
        fargs = []
        if self.ch(0.1):
            filt = " FILTER (WHERE {%d})"
        opts = []
        if ty == INT:
            opts += [("count(*)", []), ("count({0})", [self.cmp_type(scope)]),
                     ("count(DISTINCT {0})", [self.cmp_type(scope)]), ("min({0})", [INT]), ("max({0})", [INT])]
        elif ty == NUM:
            opts += [("sum({0})", [INT]), ("avg({0})", [INT]), ("sum(DISTINCT {0})", [INT])]
        elif ty == FLT:
            opts += [("sum({0})", [FLT]), ("avg({0})", [FLT]), ("min({0})", [FLT]), ("max({0})", [FLT])]
        elif ty == TXT:
            opts += [("min({0})", [TXT]), ("max({0})", [TXT]),
                     ("string_agg({0}, ',' ORDER BY {0})", [TXT]), ("string_agg({0}, '' ORDER BY {0} DESC)", [TXT]),
                     ("string_agg(DISTINCT {0}, '/' ORDER BY {0})", [TXT])]
            if self.opts.avoid_known:
                opts = opts[:2] + ([] if self.no_str_order else opts[2:4])
        elif ty == BOOL:
            opts += [("bool_and({0})", [BOOL]), ("bool_or({0})", [BOOL]), ("every({0})", [BOOL])]
        elif ty == TS:
            opts += [("min({0})", [TS]), ("max({0})", [TS])]
        elif ty == DEC:
            opts += [("sum({0})", [DEC]), ("avg({0})", [DEC]), ("min({0})", [DEC]), ("max({0})", [DEC]),
                     ("sum(DISTINCT {0})", [DEC])]
        fmt, tys = self.pick(opts)
        args = [e(t) for t in tys]
        if filt:
            fmt += filt % len(args)
            args.append(self.expr(BOOL, scope, 1))
        return agg(fmt, ty, *args)

    def agg_type(self, no_num=False):
        ts = [(INT, 4), (FLT, 2), (TXT, 2), (BOOL, 1), (TS, 1), (DEC, 1.5)]
        if not no_num:
            ts.append((NUM, 3))
        return self.wpick(ts)

    # ---- FROM
    def values_item(self):
        rows = []
        for _ in range(self.r.randint(1, 4)):
            a, b = self.value(INT, 0.2), self.value(TXT, 0.2)
            rows.append(f"({lit_sql(a, INT) if a is not None else 'CAST(NULL AS bigint)'}, "
                        f"{lit_sql(b, TXT) if b is not None else 'CAST(NULL AS text)'})")
        a = self.alias("vv")
        return N("values", rows=", ".join(rows), alias=a), [col(f"{a}.c0", INT), col(f"{a}.c1", TXT)]

    def recursive_cte(self):
        name = self.alias("rec")
        u = self.pick(["UNION", "UNION", "UNION ALL"])
        form = self.pick(["count", "closure", "closure"])
        if form == "count" or u == "UNION ALL":
            t = self.pick(list(TABLES))
            c = self.pick([c for c, ty in TABLES[t] if ty == INT])
            sql = (f"SELECT z.{c} AS c0, 0 AS c1 FROM {t} AS z WHERE z.{c} IS NOT NULL {u} "
                   f"SELECT r.c0 + 1, r.c1 + 1 FROM {name} AS r WHERE r.c1 < {self.r.randint(1, 3)}")
        else:
            # reachability over t3's k -> v edges (or t2's k -> x), a fixed point over a finite domain
            t, a, b = self.pick([("t3", "k", "v"), ("t2", "k", "x"), ("t1", "a", "b")])
            sql = (f"SELECT z.{a} AS c0, z.{b} AS c1 FROM {t} AS z UNION "
                   f"SELECT r.c0, z.{b} FROM {name} AS r JOIN {t} AS z ON z.{a} = r.c1")
        return N("cte", name=name, q=N("rawq", sql=sql), types=[INT, INT])

    def from_item(self, d, ctes):
        if self.ch(0.04):
            return self.values_item()
        x = self.r.random()
        if ctes and x < 0.4:
            c = self.pick(ctes)
            a = self.alias("w")
            return N("table", name=c.f["name"], alias=a), [col(f"{a}.c{i}", t) for i, t in enumerate(c.f["types"])]
        if d > 0 and x < 0.6 and self.ch(0.35):
            q, types = self.query(d - 1)
            a = self.alias("s")
            return N("subq", q=q, alias=a, lateral=False), [col(f"{a}.c{i}", t) for i, t in enumerate(types)]
        t = self.pick(list(TABLES))
        a = self.alias("x")
        return N("table", name=t, alias=a), [col(f"{a}.{c}", ty) for c, ty in TABLES[t]]

    def join_cond(self, ls, rs):
        for _ in range(8):
            ty = self.wpick([(INT, 5), (TXT, 3), (BOOL, 0.5), (TS, 0.5), (FLT, 0.5)])
            lc = [c for c in ls if c.ty == ty]
            rc = [c for c in rs if c.ty == ty]
            if lc and rc:
                on = fn("({0} = {1})", BOOL, self.pick(lc), self.pick(rc))
                if self.ch(0.15):
                    on = AND(on, self.join_cond(ls, rs))
                if self.ch(0.25):
                    on = AND(on, self.expr(BOOL, ls + rs, 1))
                return on
        return fn("({0} = {1})", BOOL, self.expr(INT, ls, 1), self.expr(INT, rs, 1))

    def lateral(self, scope):
        tab, isc = self.inner_table()
        corr = self.correlation(isc, scope, force=True) or fn("({0} = {1})", BOOL, self.pick([c for c in isc if c.ty == INT] or isc[:1]), lit("1", INT))
        extra = self.expr(BOOL, isc, 1) if self.ch(0.3) else None
        where = AND(corr, extra)
        a = self.alias("l")
        form = self.pick(["agg", "topk", "plain", "computed", "grouped"])
        if form == "agg":
            items = [self.aggregate(self.pick([INT, INT, NUM, TXT, FLT]), isc) for _ in range(self.r.randint(1, 2))]
            q = N("select", items=items, frm=tab, where=where)
        elif form == "topk":
            items = [self.expr(self.pick([INT, TXT, FLT]), isc, 1) for _ in range(self.r.randint(1, 2))]
            q = N("select", items=items, frm=tab, where=where, order=[self.pick(["ASC", "DESC", "ASC NULLS FIRST"])],
                  limit=self.r.randint(1, 3), offset=1 if self.ch(0.15) else None,
                  order_exprs=self.opts.avoid_known)
        elif form == "plain":
            items = [self.expr(self.pick([INT, TXT, FLT, BOOL]), isc, 1) for _ in range(self.r.randint(1, 2))]
            q = N("select", items=items, frm=tab, where=where)
        elif form == "computed":
            items = [self.expr(self.pick([INT, TXT]), scope, 2) for _ in range(self.r.randint(1, 2))]
            q = N("select", items=items, frm=None, where=None)
        else:
            kc = self.pick(isc)
            items = [kc, self.aggregate(self.pick([INT, NUM]), isc)]
            q = N("select", items=items, frm=tab, where=where, group=N("group", kind="plain", keys=[kc], sets=[]))
        types = [it.ty for it in q.f["items"]]
        node = N("subq", q=q, alias=a, lateral=True)
        return node, [col(f"{a}.c{i}", t) for i, t in enumerate(types)]

    def from_clause(self, d, ctes, first_cte=False):
        n_items = self.wpick([(1, 0.45), (2, 0.4), (3, 0.15)])
        if first_cte and ctes:
            c = ctes[0]
            a = self.alias("w")
            frm, scope = N("table", name=c.f["name"], alias=a), [col(f"{a}.c{i}", t) for i, t in enumerate(c.f["types"])]
        else:
            frm, scope = self.from_item(d, ctes)
        for j in range(1, n_items):
            last = j == n_items - 1
            kind = self.wpick([("JOIN", 4), ("LEFT JOIN", 3), ("RIGHT JOIN", 1.5), ("FULL JOIN", 1.5),
                               ("CROSS JOIN", 0.3), ("LATERAL", 1.5 if self.opts.lateral else 0), ("GS", 0.7)])
            if kind == "LATERAL":
                item, sc2 = self.lateral(scope)
                jk = self.pick([",", "CROSS JOIN", "JOIN", "LEFT JOIN"] if last else ["CROSS JOIN", "JOIN", "LEFT JOIN"])
                if jk in ("JOIN", "LEFT JOIN"):
                    on = self.pick([lit("true", BOOL), self.expr(BOOL, scope + sc2, 1)])
                    if self.opts.avoid_known and jk == "LEFT JOIN" and item.f["q"].f.get("group") is None \
                            and any(i.tag == "agg" for i in item.f["q"].f["items"]):
                        on = lit("true", BOOL)
                    frm = N("join", kind=jk, l=frm, r=item, on=on)
                else:
                    frm = N("join", kind=jk, l=frm, r=item, on=None)
                scope = scope + sc2
                continue
            if kind == "GS":
                a = self.alias("g")
                ints = [c for c in scope if c.ty == INT and c.tag == "col"]
                if ints and self.ch(0.6):
                    gs = N("gs", a=lit(self.pick(["0", "1"]), INT), b=self.pick(ints), alias=a)
                    jk = "," if last else "CROSS JOIN"
                else:
                    gs = N("gs", a=lit("1", INT), b=lit(self.pick(["2", "3"]), INT), alias=a)
                    jk = "CROSS JOIN"
                frm = N("join", kind=jk, l=frm, r=gs, on=None)
                scope = scope + [col(f"{a}.i", INT)]
                continue
            item, sc2 = self.from_item(d, ctes)
            common = []
            if frm.tag == "table" and item.tag == "table" and frm.f["name"] in TABLES and item.f["name"] in TABLES:
                common = sorted({c for c, _ in TABLES[frm.f["name"]]} & {c for c, _ in TABLES[item.f["name"]]})
            if kind == "CROSS JOIN":
                frm = N("join", kind=kind, l=frm, r=item, on=None)
            elif common and self.ch(0.5):
                frm = N("join", kind=kind, l=frm, r=item, on=None, using=self.pick(common))
            else:
                frm = N("join", kind=kind, l=frm, r=item, on=self.join_cond(scope, sc2))
            scope = scope + sc2
        return frm, scope

    def where(self, scope, sub=True):
        if not self.ch(0.65):
            return None
        w = self.expr(BOOL, scope, 2, sub=False)
        if sub and self.opts.subqueries and self.ch(0.3):
            s = self.sub_pred(scope)
            w = s if self.ch(0.3) else AND(w, s)
        return w

    # ---- queries
    def query(self, d, want=None, no_num=False, allow_cte=True):
        if want is not None:
            shape = self.wpick([("plain", 3), ("agg", 2)])
        else:
            shape = self.wpick([("plain", 28), ("agg", 24), ("gsets", 6), ("window", 10), ("setop", 10),
                                ("topk", 8), ("distinct_on", 4), ("win_filter", 5)])
        ctes = []
        if allow_cte and want is None and d > 0 and self.ch(0.12):
            cq, ctypes = self.query(d - 1, allow_cte=False)
            ctes = [N("cte", name=self.alias("cte"), q=cq, types=ctypes)]
        elif allow_cte and want is None and self.ch(0.05):
            ctes = [self.recursive_cte()]
        if shape == "setop":
            l, lt = self.query(max(d - 1, 0), no_num=True, allow_cte=False) if self.ch(0.2) else self.select(d, "plain", None, True, [])
            r, rt = self.select(d, self.pick(["plain", "agg"]), lt, True, [])
            op = self.pick(["UNION", "UNION ALL", "EXCEPT", "EXCEPT ALL", "INTERSECT", "INTERSECT ALL"])
            q = N("setop", op=op, l=l, r=r, types=lt)
            if self.ch(0.25):
                q = q.copy(order=[self.pick(["ASC", "DESC"])], limit=self.r.randint(1, 5))
            return q, lt
        if shape == "win_filter":
            inner, it = self.select(d, "window", None, no_num, ctes, rank_only=True)
            a = self.alias("s")
            sc = [col(f"{a}.c{i}", t) for i, t in enumerate(it)]
            rn = sc[-1]
            w = fn(self.pick(["({0} <= {1})", "({0} < {1})", "({0} = {1})"]), BOOL, rn, lit(str(self.r.randint(1, 3)), INT))
            if self.ch(0.3):
                w = AND(w, self.expr(BOOL, sc, 1))
            q = N("select", items=sc, frm=N("subq", q=inner, alias=a, lateral=False), where=w)
            return q, it
        if shape in ("topk", "distinct_on"):
            base = self.pick(["plain", "agg"]) if shape == "topk" else "plain"
            q, t = self.select(d, base, want, no_num, ctes)
            dirs = [self.pick(["ASC", "DESC", "ASC NULLS FIRST", "DESC NULLS LAST"]) for _ in range(3)]
            if shape == "distinct_on":
                q = q.copy(distinct=self.r.randint(1, 2), order=dirs, limit=self.r.randint(1, 4) if self.ch(0.3) else None)
            else:
                q = q.copy(order=dirs, limit=self.r.randint(1, 5), offset=self.r.randint(1, 2) if self.ch(0.2) else None)
            return q, t
        return self.select(d, shape, want, no_num, ctes)

    def select(self, d, shape, want, no_num, ctes, rank_only=False):
        frm, scope = self.from_clause(d, ctes, first_cte=bool(ctes) and self.ch(0.8))
        saved = self.no_str_order
        self.no_str_order = self.opts.avoid_known and "generate_series" in R(frm)
        try:
            return self.select_body(d, shape, want, no_num, ctes, rank_only, frm, scope)
        finally:
            self.no_str_order = saved

    def select_body(self, d, shape, want, no_num, ctes, rank_only, frm, scope):
        where = self.where(scope)
        sub = self.opts.subqueries
        if shape == "plain":
            tys = want or [self.wpick([(INT, 4), (FLT, 2), (TXT, 3), (BOOL, 1.5), (TS, 1)]) for _ in range(self.r.randint(1, 4))]
            items = [self.expr(t, scope, self.r.randint(0, 3), sub=sub and self.ch(0.3)) for t in tys]
            distinct = "all" if self.ch(0.2) else None
            return N("select", items=items, frm=frm, where=where, distinct=distinct, ctes=ctes), [i.ty for i in items]
        if shape in ("agg", "gsets"):
            nk = self.r.randint(0, 2) if shape == "agg" else self.r.randint(2, 3)
            if want is not None:
                nk = self.r.randint(0, len(want))
            keys = []
            for _ in range(nk):
                if self.ch(0.8):
                    k = self.pick(scope)
                else:
                    k = self.expr(self.pick([INT, TXT, TS]), scope, 1)
                if shape == "gsets" and not base_cols_only(k):
                    continue
                if shape == "gsets" and self.opts.avoid_known and k.tag != "col":
                    continue
                if all(R(k) != R(x) for x in keys):
                    keys.append(k)
            if shape == "gsets" and len(keys) < 2:
                shape = "agg"
            kscope = [col(R(k), k.ty) for k in keys]
            items = []
            if want is not None:
                for t in want:
                    ks = [k for k in kscope if k.ty == t]
                    if ks and self.ch(0.6):
                        items.append(self.pick(ks))
                    else:
                        items.append(self.aggregate(t, scope, no_num))
            else:
                for k in kscope:
                    if self.ch(0.85):
                        items.append(k if self.ch(0.8) else self.expr(k.ty, kscope, 1))
                for _ in range(self.r.randint(1, 3)):
                    a = self.aggregate(self.agg_type(no_num), scope, no_num)
                    if self.ch(0.15) and a.ty in (INT, FLT, TXT):
                        a = self.expr(a.ty, kscope + [a], 1)
                    items.append(a)
                if shape == "gsets" and self.ch(0.6):
                    items.append(fn("grouping(" + ", ".join("{%d}" % i for i in range(len(kscope))) + ")", INT, *kscope))
                if shape == "agg" and self.ch(0.12) and not no_num:
                    w = self.window_item(len(items), ranking=self.ch(0.5))
                    self.win_type(w, list(items))
                    items.append(w)
                if sub and self.ch(0.05):
                    items.append(self.scalar_sub(INT, []))
            having = None
            if self.ch(0.35):
                hs = kscope + [self.aggregate(self.pick([INT, INT, FLT, TXT, NUM]), scope, no_num)]
                having = self.expr(BOOL, hs, 1)
            if sub and self.ch(0.05):
                having = AND(having, fn("(count(*) %s {0})" % self.pick([">=", "<", "<>"]), BOOL,
                                        self.scalar_sub(INT, [])))
            group = None
            if keys:
                kind = "plain"
                sets = []
                if shape == "gsets":
                    kind = self.pick(["rollup", "cube", "sets", "mixed"])
                    if kind == "sets":
                        alls = [[i for i in range(len(keys)) if m >> i & 1] for m in range(1 << len(keys))]
                        sets = self.r.sample(alls, self.r.randint(1, min(4, len(alls))))
                group = N("group", kind=kind, keys=keys, sets=sets)
            elif shape == "gsets":
                pass
            return (N("select", items=items, frm=frm, where=where, group=group, having=having, ctes=ctes),
                    [i.ty for i in items])
        if shape == "window":
            base = [self.expr(self.wpick([(INT, 4), (FLT, 1), (TXT, 2), (TS, 0.5)]), scope, self.r.randint(0, 1))
                    for _ in range(self.r.randint(1, 3))]
            items = list(base)
            nw = 1 if rank_only else self.r.randint(1, 2)
            for _ in range(nw):
                items.append(self.window_item(len(base), ranking=rank_only,
                                              sensitive_ok=not any(tie_sensitive(i) for i in items)))
            types = []
            for it in items:
                if it.tag == "win":
                    types.append(self.win_type(it, base))
                else:
                    types.append(it.ty)
            return N("select", items=items, frm=frm, where=where, ctes=ctes), types
        raise ValueError(shape)

    def window_item(self, nbase, ranking=False, sensitive_ok=True):
        if ranking:
            fname = self.pick(["row_number", "rank", "dense_rank"])
        elif not sensitive_ok:
            fname = self.pick(["rank", "dense_rank", "percent_rank", "cume_dist", "sum", "count", "count*",
                               "min", "max", "first_value", "last_value"])
        else:
            fname = self.wpick([("row_number", 2), ("rank", 2), ("dense_rank", 1), ("lag", 2), ("lead", 1.5),
                                ("first_value", 1), ("last_value", 0.5), ("nth_value", 0.5), ("sum", 2),
                                ("count", 1), ("count*", 1), ("min", 1), ("max", 1), ("avg", 0.5),
                                ("ntile", 0.5), ("percent_rank", 0.5), ("cume_dist", 0.5)])
        part = sorted(self.r.sample(range(nbase), self.r.randint(0, min(nbase, 2)))) if nbase else []
        ordered = True
        if fname in ("sum", "count", "count*", "min", "max", "avg") and self.ch(0.3):
            ordered = False
        frame = None
        if fname in ("sum", "count", "count*", "min", "max", "avg", "first_value", "last_value", "nth_value") and self.ch(0.4) \
                and sensitive_ok:
            frame = self.pick(["ROWS BETWEEN 1 PRECEDING AND CURRENT ROW", "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 FOLLOWING",
                               "ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING", "GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW",
                               "RANGE BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING",
                               "RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
                               "RANGE BETWEEN 1 PRECEDING AND CURRENT ROW", "ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING"])
        extra = None
        if fname in ("lag", "lead"):
            extra = self.pick(["", "", ", 2", "default"])
        if fname == "ntile":
            extra = self.pick([2, 3])
        dirs = [self.pick(["ASC", "DESC", "ASC NULLS FIRST", "DESC NULLS LAST"]) for _ in range(3)]
        return N("win", None, fn=fname, arg=self.r.randrange(nbase) if nbase else None, part=part,
                 ordered=ordered, dirs=dirs, frame=frame, extra=extra)

    def win_type(self, w, base):
        fname = w.f["fn"]
        if fname in ("row_number", "rank", "dense_rank", "count", "count*", "ntile"):
            t = INT
        elif fname in ("percent_rank", "cume_dist"):
            t = FLT
        else:
            a = base[min(w.f["arg"], len(base) - 1)].ty if base else INT
            if fname in ("sum", "avg"):
                t = NUM if a == INT else FLT
                if a not in (INT, FLT):
                    w.f["fn"] = "count"
                    t = INT
            else:
                t = a
        w.ty = t
        return t

    # ---- DML
    def dml_pred(self, t):
        scope = [col(c, ty) for c, ty in TABLES[t]]
        return self.expr(BOOL, scope, self.r.randint(1, 2), sub=False, safe=True)

    def step(self, sizes):
        t = self.pick(list(TABLES))
        big = sizes.get(t, 0) > 40
        kind = self.wpick([("insert", 0.1 if big else 4), ("delete", 6 if big else 2.5), ("update", 3.5),
                           ("insert_select", 0 if big else self.opts.dml_extra), ("delete_sub", self.opts.dml_extra)])
        if kind == "insert_select":
            # rows of another table, column by column where the types match, else NULL
            src = self.pick(list(TABLES))
            cols = []
            for _, ty in TABLES[t]:
                cands = [c for c, sty in TABLES[src] if sty == ty]
                cols.append(f"z.{self.pick(cands)}" if cands and self.ch(0.8) else f"CAST(NULL AS {SQLTYPE[ty]})")
            scope = [col(f"z.{c}", ty) for c, ty in TABLES[src]]
            return {"kind": "sql", "table": t,
                    "sql": f"INSERT INTO {t} SELECT {', '.join(cols)} FROM {src} AS z WHERE "
                           f"{R(self.expr(BOOL, scope, 1, safe=True))}"}
        if kind == "delete_sub":
            src = self.pick(list(TABLES))
            ty = self.pick([INT, TXT])
            mine = [c for c, cty in TABLES[t] if cty == ty]
            theirs = [c for c, cty in TABLES[src] if cty == ty]
            if mine and theirs:
                neg = "NOT " if self.ch(0.3) else ""
                return {"kind": "sql", "table": t,
                        "sql": f"DELETE FROM {t} WHERE {self.pick(mine)} {neg}IN (SELECT z.{self.pick(theirs)} FROM {src} AS z "
                               f"WHERE {R(self.expr(BOOL, [col(f'z.{c}', cty) for c, cty in TABLES[src]], 1, safe=True))})"}
            kind = "delete"
        if kind == "insert":
            n = self.r.randint(1, 3) if not self.ch(0.1) else self.r.randint(5, 10)
            return {"kind": "insert", "table": t, "rows": [self.row(t) for _ in range(n)]}
        if kind == "delete":
            return {"kind": "delete", "table": t, "where": R(self.dml_pred(t)) if self.ch(0.95) else None}
        sets = []
        cols = self.r.sample(TABLES[t], self.r.randint(1, 2))
        for c, ty in cols:
            opts = [val_sql(self.value(ty, 0.15), ty)]
            if ty == INT:
                opts += [f"{c} + 1", f"{c} - 1", f"{c} % 3", f"- {c}"] + [o for o, oty in TABLES[t] if oty == INT]
            elif ty == FLT:
                opts += [f"{c} * 2", f"{c} + 0.5", f"- {c}"]
            elif ty == TXT:
                opts += [f"upper({c})", f"lower({c})", f"substr({c}, 1, 1)"]
            elif ty == BOOL:
                opts += [f"NOT {c}"]
            elif ty == TS:
                opts += [f"{c} + INTERVAL '1 hour'"]
            elif ty == DEC:
                opts += [f"{c} * 2", f"{c} + CAST('0.05' AS numeric)", f"- {c}"]
            sets.append(f"{c} = {self.pick(opts)}")
        return {"kind": "update", "table": t, "set": ", ".join(sets),
                "where": R(self.dml_pred(t)) if self.ch(0.85) else None}


def step_sql(st):
    t = st["table"]
    if st["kind"] == "sql":
        return st["sql"]
    if st["kind"] == "insert":
        types = [ty for _, ty in TABLES[t]]
        return f"INSERT INTO {t} VALUES " + ", ".join(
            "(" + ", ".join(val_sql(v, ty) for v, ty in zip(r, types)) + ")" for r in st["rows"])
    if st["kind"] == "delete":
        return f"DELETE FROM {t}" + (f" WHERE {st['where']}" if st["where"] else "")
    return f"UPDATE {t} SET {st['set']}" + (f" WHERE {st['where']}" if st["where"] else "")


# ------------------------------------------------------------------------------------------
# values

TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$")


def cnum(x):
    x = float(x)
    if x != x:
        return ("n", "nan")
    if x == 0:
        return ("n", "0")
    if x in (float("inf"), float("-inf")):
        return ("n", str(x))
    return ("n", "%.10g" % x)


def cstr(s):
    if TS_RE.match(s) and "." in s:
        s = s.rstrip("0").rstrip(".")
    return ("s", s)


def canon_pg(v, oid):
    if v is None:
        return None
    if oid == 16:
        return ("b", v == "t")
    if oid in (20, 21, 23, 700, 701, 1700):
        return cnum(v)
    return cstr(str(v))


def canon_fe(v, ty=None):
    if v is None:
        return None
    if ty == "numeric":
        return cnum(v)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return cnum(v)
    if isinstance(v, str):
        return cstr(v)
    return ("?", json.dumps(v))


def show(c):
    if c is None:
        return "NULL"
    k, v = c
    if k == "b":
        return "true" if v else "false"
    if k == "n":
        return v
    if k == "s":
        return repr(v)
    return v


def close(a, b):
    if a == b:
        return True
    if a is None or b is None or a[0] != "n" or b[0] != "n":
        return False
    try:
        x, y = float(a[1]), float(b[1])
    except ValueError:
        return False
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y)) or abs(x - y) < 1e-12


def same_multiset(xs, ys):
    if collections.Counter(xs) == collections.Counter(ys):
        return True
    if len(xs) != len(ys):
        return False
    key = lambda r: tuple((0, "") if v is None else (1, v[0] + ":" + str(v[1])) for v in r)
    xs, ys = sorted(xs, key=key), sorted(ys, key=key)
    for r1, r2 in zip(xs, ys):
        if len(r1) != len(r2) or not all(close(a, b) for a, b in zip(r1, r2)):
            return False
    return True


class Res:
    """Outcome of a read: ok with rows, or an error with a code."""

    def __init__(self, ok, rows=None, code=None, msg=None):
        self.ok, self.rows, self.code, self.msg = ok, rows, code, msg

    def text(self):
        if not self.ok:
            return f"ERROR {self.code}: {self.msg}"
        rows = sorted(self.rows, key=lambda r: [show(v) for v in r])
        return f"{len(rows)} rows\n" + "\n".join("  " + " | ".join(show(v) for v in r) for r in rows)


def classify(fe, pg):
    """None when the two agree, else a short class string."""
    if fe.ok and pg.ok:
        return None if same_multiset(fe.rows, pg.rows) else "diff"
    if not fe.ok and not pg.ok:
        return None
    if not fe.ok:
        return f"fe_err:{fe.code}"
    return f"pg_err:{pg.code}"


def diff_text(fe, pg):
    if not (fe.ok and pg.ok):
        return ""
    a, b = collections.Counter(pg.rows), collections.Counter(fe.rows)
    only_pg = a - b
    only_fe = b - a
    s = ""
    for name, c in (("only in PostgreSQL", only_pg), ("only in freshet", only_fe)):
        if c:
            s += f"{name}:\n"
            for r, m in sorted(c.items(), key=lambda x: [show(v) for v in x[0]]):
                s += "  " + " | ".join(show(v) for v in r) + (f"   (x{m})" if m > 1 else "") + "\n"
    return s


# ------------------------------------------------------------------------------------------
# systems

class ServerDied(Exception):
    pass


class Hang(Exception):
    pass


class Freshet:
    def __init__(self, binary, port, workers, logdir):
        self.binary, self.port, self.workers = binary, port, workers
        self.url = f"http://127.0.0.1:{port}"
        self.logdir = logdir
        self.proc = None
        self.sess = requests.Session()
        self.starts = 0
        self.log_path = None
        self.recent = collections.deque(maxlen=40)

    def start(self):
        self.starts += 1
        self.log_path = os.path.join(self.logdir, f"freshet-{self.port}-w{self.workers}-{self.starts}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "serve", "--listen", f"127.0.0.1:{self.port}",
                                      "--workers", str(self.workers), "--ephemeral"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if self.sess.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"freshet exited with {self.proc.returncode}, see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError("freshet not ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            lines = open(self.log_path, errors="replace").read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def panics(self):
        try:
            txt = open(self.log_path, errors="replace").read()
        except OSError:
            return []
        return [l for l in txt.splitlines() if "panick" in l or "PANIC" in l]

    def _req(self, method, path, timeout, **kw):
        self.recent.append(f"{method} {path} {json.dumps(kw.get('json'))[:3000] if kw.get('json') else ''}")
        try:
            r = self.sess.request(method, self.url + path, timeout=timeout, **kw)
        except requests.Timeout:
            raise Hang(f"{method} {path} {json.dumps(kw.get('json')) if kw.get('json') else ''} timed out after {timeout}s")
        except requests.ConnectionError as e:
            if not self.alive():
                raise ServerDied(str(e))
            time.sleep(0.5)
            if not self.alive():
                raise ServerDied(str(e))
            raise
        try:
            j = r.json()
        except ValueError:
            j = {"error": {"code": f"http_{r.status_code}", "message": r.text[:300]}}
        return r.status_code, j

    def sql(self, sql, timeout=60):
        st, j = self._req("POST", "/v1/sql", timeout, json={"sql": sql})
        if "error" in j:
            return Res(False, code=j["error"].get("code"), msg=j["error"].get("message"))
        if st != 200:
            return Res(False, code=f"http_{st}", msg=str(j)[:300])
        res = j["results"][-1]
        rows = res.get("rows")
        tys = [c.get("type") for c in res.get("columns") or []]
        return Res(True, rows=[tuple(canon_fe(v, t) for v, t in itertools.zip_longest(r, tys)) for r in rows]
                   if rows is not None else None)

    def read(self, name, timeout=60):
        st, j = self._req("GET", f"/v1/views/{name}", timeout)
        if "error" in j:
            return Res(False, code=j["error"].get("code"), msg=j["error"].get("message"))
        tys = [c.get("type") for c in j.get("columns") or []]
        return Res(True, rows=[tuple(canon_fe(v, t) for v, t in itertools.zip_longest(r, tys)) for r in j["rows"]])


class Pg:
    def __init__(self, dsn, schema):
        self.dsn, self.schema = dsn, schema
        self.connect()

    def connect(self):
        self.conn = psycopg2.connect(self.dsn)
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        self.cur.execute(f"SET statement_timeout = '20s'; SET extra_float_digits = 3; SET synchronous_commit = off")

    def run(self, sql):
        try:
            self.cur.execute(sql)
            if self.cur.description is None:
                return Res(True, rows=None)
            oids = [d.type_code for d in self.cur.description]
            return Res(True, rows=[tuple(canon_pg(v, o) for v, o in zip(r, oids)) for r in self.cur.fetchall()])
        except psycopg2.Error as e:
            if self.conn.closed:
                self.connect()
            msg = str(e).strip().split("\n")[0]
            return Res(False, code=e.pgcode or "?", msg=msg)

    def reset(self):
        self.cur.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE; CREATE SCHEMA {self.schema}; "
                         f"SET search_path TO {self.schema}")
        for t, cols in TABLES.items():
            self.cur.execute(f"CREATE TABLE {t} (" + ", ".join(f"{c} {SQLTYPE[ty]}" for c, ty in cols) + ")")

    def table_rows(self, t):
        self.cur.execute(f"SELECT * FROM {t}")
        out = []
        for r in self.cur.fetchall():
            vals = []
            for v, (_, ty) in zip(r, TABLES[t]):
                if v is None:
                    vals.append(None)
                elif ty == INT:
                    vals.append(int(v))
                elif ty == FLT:
                    vals.append(float(v))
                elif ty == BOOL:
                    vals.append(v == "t")
                else:
                    vals.append(str(v))
            out.append(tuple(vals))
        return out


def runtime_pg_error(code):
    return code is not None and (code.startswith("22") or code.startswith("21") or code == "2201W")


# `CREATE INDEX` statements run on freshet after the tables (chosen once per run, `--indexes`):
# joins and reads over indexed columns take other paths, and the results must not change.
INDEX_SQL = ""

CREATE_TABLES = "; ".join(f"CREATE TABLE {t} (" + ", ".join(f"{c} {SQLTYPE[ty]}" for c, ty in cols) + ")"
                          for t, cols in TABLES.items())

FEATURES = [
    ("left_join", r"\bLEFT JOIN\b"), ("right_join", r"\bRIGHT JOIN\b"), ("full_join", r"\bFULL JOIN\b"),
    ("inner_join", r"(?<!LEFT )(?<!RIGHT )(?<!FULL )(?<!CROSS )\bJOIN\b"), ("cross_join", r"\bCROSS JOIN\b"),
    ("comma", r"\) AS \w+, |AS [xsw]\d+, "), ("lateral", r"\bLATERAL\b"), ("generate_series", r"generate_series"),
    ("group_by", r"\bGROUP BY\b"), ("rollup", r"\bROLLUP\b"), ("cube", r"\bCUBE\b"), ("grouping_sets", r"GROUPING SETS"),
    ("grouping()", r"grouping\("), ("having", r"\bHAVING\b"), ("distinct_on", r"DISTINCT ON"),
    ("select_distinct", r"SELECT DISTINCT (?!ON)"), ("count_distinct", r"count\(DISTINCT"),
    ("agg_distinct", r"(sum|avg|string_agg)\(DISTINCT"), ("filter", r"FILTER \(WHERE"),
    ("over", r"\bOVER\b"), ("frame_rows", r"\bROWS BETWEEN"), ("frame_range", r"\bRANGE BETWEEN"),
    ("frame_groups", r"\bGROUPS BETWEEN"), ("union", r"\bUNION\b"), ("except", r"\bEXCEPT\b"),
    ("intersect", r"\bINTERSECT\b"), ("setop_all", r"(UNION|EXCEPT|INTERSECT) ALL"),
    ("exists", r"EXISTS \("), ("in_subquery", r"IN \(SELECT"), ("not_in_subquery", r"NOT IN \(SELECT"),
    ("scalar_subquery", r"[(=<>] \(SELECT|\(\(SELECT"), ("with", r"^WITH\b"), ("limit", r"\bLIMIT\b"),
    ("offset", r"\bOFFSET\b"), ("order_by", r"\bORDER BY\b"), ("case", r"\bCASE\b"), ("like", r"LIKE"),
    ("between", r"BETWEEN (?!UNBOUNDED|1 PRECEDING|CURRENT|2 PRECEDING)"), ("in_list", r"IN \((?!SELECT)"),
    ("is_distinct", r"IS (NOT )?DISTINCT FROM"), ("div", r" / "), ("mod", r" % |mod\("), ("concat", r"\|\||concat\("),
    ("cast", r"CAST\("), ("interval", r"INTERVAL"), ("date_trunc", r"date_trunc"), ("date_part", r"date_part"),
    ("null_lit", r"NULL\b(?! )|CAST\(NULL"),
] + [(f"fn_{f}", rf"\b{f}\(") for f in [
    "coalesce", "nullif", "greatest", "least", "abs", "round", "floor", "ceil", "length", "strpos", "lower", "upper",
    "trim", "reverse", "substr", "left", "right", "replace", "lpad", "split_part", "repeat", "sum", "avg", "min", "max",
    "count", "string_agg", "bool_and", "bool_or", "every", "row_number", "rank", "dense_rank", "lag", "lead",
    "first_value", "last_value", "nth_value", "ntile", "percent_rank", "cume_dist"]]


def features(sql):
    return sorted(name for name, rx in FEATURES if re.search(rx, sql))


# ------------------------------------------------------------------------------------------
# the run

class Failure:
    def __init__(self, qnode, qsql, scen, kind, cls, fe, pg, round_no, qid, others):
        self.qnode, self.qsql, self.scen, self.kind, self.cls = qnode, qsql, scen, kind, cls
        self.fe, self.pg, self.round_no, self.qid, self.others = fe, pg, round_no, qid, others


class Fuzzer:
    def __init__(self, opts):
        self.o = opts
        self.rng = random.Random(opts.seed)
        global INDEX_SQL
        picks = []
        for _ in range(opts.indexes):
            t = self.rng.choice(sorted(TABLES))
            cols = [c for c, _ in TABLES[t]]
            n = self.rng.choice([1, 1, 2])
            picks.append(f"CREATE INDEX ON {t} ({', '.join(self.rng.sample(cols, n))})")
        INDEX_SQL = "".join(f"; {i}" for i in dict.fromkeys(picks))
        os.makedirs(opts.findings_dir, exist_ok=True)
        self.fe = Freshet(opts.binary, opts.port, opts.workers, opts.findings_dir)
        self.pg = Pg(opts.pg_dsn, f"fuzz_{opts.port}")
        self.stats = collections.Counter()
        self.refusals = collections.Counter()
        self.rejections = {}
        self.findings = []
        self.view_n = 0
        self.start_time = time.time()
        st = os.stat(opts.binary)
        self.bin_id = f"size {st.st_size}, mtime {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.st_mtime))} UTC"
        self.sig_file = os.path.join(opts.findings_dir, "signatures.txt")
        self.rej_file = os.path.join(opts.findings_dir, f"rejections-{opts.port}.txt")
        self.ref_file = os.path.join(opts.findings_dir, f"refusals-{opts.port}.txt")

    def log(self, *a):
        print(f"[{time.time() - self.start_time:7.1f}s seed={self.o.seed} w={self.o.workers}]", *a, flush=True)

    # ---- environment
    def reset(self):
        self.pg.reset()
        r = self.fe.sql("DROP TABLE IF EXISTS t1, t2, t3 CASCADE; " + CREATE_TABLES + INDEX_SQL)
        if not r.ok:
            raise RuntimeError(f"freshet reset failed: {r.code} {r.msg}")

    def insert_rows(self, t, rows):
        if not rows:
            return None
        return self.apply({"kind": "insert", "table": t, "rows": rows})

    def apply(self, st):
        """Applies a DML step to both; returns None or a description of a disagreement."""
        sql = step_sql(st)
        f = self.fe.sql(sql)
        if not f.ok and f.code == "unsupported":
            # refused by freshet (nothing applied): skip it in PostgreSQL too
            self.stats["dml_refused"] += 1
            self.refusals["DML: " + norm_msg(f.msg)] += 1
            st["refused"] = True
            return None
        p = self.pg.run(sql)
        if p.ok != f.ok:
            return f"DML disagreement on {sql}: PostgreSQL {'ok' if p.ok else str(p.code) + ' ' + str(p.msg)}, freshet {'ok' if f.ok else str(f.code) + ' ' + str(f.msg)}"
        return None

    def compare_tables(self):
        for t in TABLES:
            f = self.fe.read(t)
            p = self.pg.run(f"SELECT * FROM {t}")
            if classify(f, p):
                return t, f, p
        return None

    def sizes(self):
        return {t: len(self.pg.table_rows(t)) for t in TABLES}

    def read_fe(self, kind, name, qsql):
        if kind == "view":
            return self.fe.read(name)
        return self.fe.sql(qsql)

    # ---- one round: a few views, a sequence of steps
    def round(self, rno):
        g = Gen(random.Random(self.rng.random()), self.o)
        self.reset()
        pre = {t: [g.row(t) for _ in range(self.rng.randint(0, self.o.max_rows))] for t in TABLES}
        create_first = self.rng.random() < 0.25
        steps_done = []
        if create_first:
            scen_pre = {t: [] for t in TABLES}
        else:
            scen_pre = pre
            for t, rows in pre.items():
                e = self.insert_rows(t, rows)
                if e:
                    self.record_simple("dml", e, rno)
                    return []
        views = []
        tries = 0
        while len(views) < self.o.views_per_round and tries < self.o.views_per_round * 6 and self.stats["accepted"] < self.o.queries:
            tries += 1
            qnode, _ = g.query(self.rng.choice([1, 1, 2]))
            qsql = R(qnode)
            self.stats["generated"] += 1
            pr = self.pg.run("EXPLAIN " + qsql)
            if not pr.ok:
                self.stats["pg_invalid"] += 1
                if self.o.verbose:
                    self.log("PG rejects:", pr.msg, "\n   ", qsql)
                continue
            self.view_n += 1
            name = f"v{self.view_n}"
            r = self.fe.sql(f"CREATE VIEW {name} AS {qsql}")
            if not r.ok:
                if r.code == "unsupported":
                    self.stats["refused"] += 1
                    key = norm_msg(r.msg)
                    self.refusals[key] += 1
                    if self.refusals[key] <= 3:
                        with open(self.ref_file, "a") as fh:
                            fh.write(f"{key}\n  {qsql}\n\n")
                else:
                    self.stats["rejected"] += 1
                    key = f"{r.code}: {norm_msg(r.msg)}"
                    self.refusals[key] += 1
                    if key not in self.rejections:
                        self.rejections[key] = qsql
                        with open(self.rej_file, "a") as fh:
                            fh.write(f"{key}\n  {qsql}\n\n")
                continue
            self.stats["accepted"] += 1
            views.append({"name": name, "q": qnode, "sql": qsql, "live": True, "adhoc": 0})
        failures = []

        def check_all(final=False):
            for v in views:
                if not v["live"]:
                    continue
                kinds = ["view"]
                if final or v["adhoc"] == 0 or self.rng.random() < self.o.adhoc_p:
                    kinds.append("adhoc")
                for kind in kinds:
                    f = self.read_fe(kind, v["name"], v["sql"])
                    p = self.pg.run(v["sql"])
                    self.stats[f"checks_{kind}"] += 1
                    if kind == "adhoc":
                        v["adhoc"] += 1
                    if not p.ok and not runtime_pg_error(p.code):
                        self.stats["pg_other_error"] += 1
                        if p.code == "57014":
                            self.stats["pg_timeout"] += 1
                        v["live"] = False
                        break
                    if not f.ok and not p.ok:
                        self.stats["both_error"] += 1
                    elif p.ok:
                        self.stats["pg_rows_total"] += len(p.rows)
                        if p.rows:
                            self.stats["checks_nonempty"] += 1
                    c = classify(f, p)
                    if c:
                        self.stats["mismatches"] += 1
                        scen = {"pre": {t: list(rs) for t, rs in scen_pre.items()}, "steps": list(steps_done)}
                        others = [w["sql"] for w in views if w is not v]
                        failures.append(Failure(v["q"], v["sql"], scen, kind, c, f, p, rno, v["name"], others))
                        self.log(f"MISMATCH {c} ({kind}) {v['name']}: {v['sql'][:200]}")
                        v["live"] = False
                        break

        if create_first:
            for t in TABLES:
                if pre[t]:
                    st = {"kind": "insert", "table": t, "rows": pre[t]}
                    e = self.apply(st)
                    if e:
                        self.record_simple("dml", e, rno)
                        return failures
                    steps_done.append(st)
        check_all()
        for _ in range(self.o.steps):
            if not any(v["live"] for v in views):
                break
            st = g.step(self.sizes())
            e = self.apply(st)
            self.stats["steps"] += 1
            steps_done.append(st)
            if e:
                self.record_simple("dml", e + "\nsteps so far:\n" + "\n".join(step_sql(s) + ";" for s in steps_done), rno)
                return failures
            tc = self.compare_tables()
            if tc:
                t, f, p = tc
                self.record_simple("table", f"table {t} differs after:\n" + "\n".join(step_sql(s) + ";" for s in steps_done)
                                   + f"\nPostgreSQL:\n{p.text()}\nfreshet:\n{f.text()}\n", rno)
                return failures
            check_all()
        check_all(final=True)
        for v in views:
            if v["live"]:
                self.stats["views_clean"] += 1
        return failures

    # ---- reproduction and shrinking
    def scenario(self, qsql, scen, kind):
        """Replays a scenario with a single view; returns (class, fe, pg)."""
        self.stats["shrink_runs"] += 1
        self.reset()
        for t, rows in scen["pre"].items():
            if rows:
                e = self.insert_rows(t, rows)
                if e:
                    return "dml", None, None
        self.view_n += 1
        name = f"r{self.view_n}"
        r = self.fe.sql(f"CREATE VIEW {name} AS {qsql}")
        if not r.ok:
            return "refused", r, None
        for st in scen["steps"]:
            if self.apply(st):
                return "dml", None, None
        f = self.read_fe(kind, name, qsql)
        p = self.pg.run(qsql)
        if not p.ok and not runtime_pg_error(p.code):
            return "pg_invalid", f, p
        return classify(f, p), f, p

    def final_state(self):
        return {t: self.pg.table_rows(t) for t in TABLES}

    def shrink(self, fl):
        deadline = time.time() + self.o.shrink_secs
        cls, kind = fl.cls, fl.kind

        def test(qsql, scen):
            if time.time() > deadline:
                return False
            try:
                c, _, _ = self.scenario(qsql, scen, kind)
            except Hang:
                self.fe.restart()
                c = "hang"
            except ServerDied:
                self.fe.restart()
                c = "crash"
            return c == cls

        q, qsql, scen = fl.qnode, fl.qsql, fl.scen
        if not test(qsql, scen) and not test(qsql, scen):
            return None
        scen = self.shrink_data(qsql, scen, test)
        seen_bad = set()
        progress = True
        while progress and time.time() < deadline:
            progress = False
            for cand in candidates(q):
                if time.time() > deadline:
                    break
                s = R(cand)
                if s == qsql or s in seen_bad:
                    continue
                if not sane(cand):
                    seen_bad.add(s)
                    continue
                if not self.pg.run("EXPLAIN " + s).ok:
                    seen_bad.add(s)
                    continue
                if test(s, scen):
                    q, qsql, progress = cand, s, True
                    break
                seen_bad.add(s)
        deadline = max(deadline, time.time() + 60)
        scen = self.shrink_data(qsql, scen, test)
        return q, qsql, scen

    def shrink_data(self, qsql, scen, test):
        if scen["steps"]:
            # the final state as data loaded before the view, without steps
            c, _, _ = self.scenario(qsql, scen, "view")
            final = self.final_state()
            for cand in ({"pre": final, "steps": []},
                         {"pre": {t: [] for t in TABLES},
                          "steps": [{"kind": "insert", "table": t, "rows": rs} for t, rs in final.items() if rs]}):
                if test(qsql, cand):
                    scen = cand
                    break
        steps = ddmin(scen["steps"], lambda s: test(qsql, {"pre": scen["pre"], "steps": s}))
        scen = {"pre": scen["pre"], "steps": steps}
        for t in TABLES:
            rows = ddmin(scen["pre"][t], lambda rs: test(qsql, {"pre": {**scen["pre"], t: rs}, "steps": scen["steps"]}))
            scen = {"pre": {**scen["pre"], t: rows}, "steps": scen["steps"]}
        for i, st in enumerate(scen["steps"]):
            if st["kind"] == "insert" and len(st["rows"]) > 1:
                def t_rows(rs, i=i, st=st):
                    s2 = list(scen["steps"])
                    s2[i] = {**st, "rows": rs}
                    return bool(rs) and test(qsql, {"pre": scen["pre"], "steps": s2})
                rows = ddmin(st["rows"], t_rows)
                s2 = list(scen["steps"])
                s2[i] = {**st, "rows": rows}
                scen = {"pre": scen["pre"], "steps": s2}
        # NULL out values that do not matter
        for t in TABLES:
            rows = scen["pre"][t]
            for ri in range(len(rows)):
                for ci in range(len(TABLES[t])):
                    if rows[ri][ci] is None:
                        continue
                    nr = list(rows)
                    nr[ri] = tuple(None if j == ci else v for j, v in enumerate(rows[ri]))
                    cand = {"pre": {**scen["pre"], t: nr}, "steps": scen["steps"]}
                    if test(qsql, cand):
                        scen = cand
                        rows = nr
        return scen

    # ---- findings
    def next_finding_path(self):
        for i in range(1, 10000):
            p = os.path.join(self.o.findings_dir, f"{i:03d}.txt")
            try:
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                return p, fd
            except FileExistsError:
                continue
        raise RuntimeError("too many findings")

    def known_signatures(self):
        try:
            return [l.rstrip("\n") for l in open(self.sig_file)]
        except OSError:
            return []

    def write_finding(self, sig, body):
        if sig in self.known_signatures():
            self.stats["duplicate_findings"] += 1
            self.log("duplicate finding:", sig)
            return None
        with open(self.sig_file, "a") as fh:
            fh.write(sig + "\n")
        p, fd = self.next_finding_path()
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        self.findings.append(p)
        self.stats["findings"] += 1
        self.log("wrote finding", p, sig)
        return p

    def header(self, rno):
        return (f"seed {self.o.seed}, workers {self.o.workers}, round {rno}, "
                f"binary {self.o.binary} ({self.bin_id})\n")

    def record_simple(self, what, text, rno):
        self.stats[f"finding_{what}"] += 1
        sig = f"{what}|{norm_msg(text.splitlines()[0])[:120]}"
        self.write_finding(sig, f"kind: {what}\n{self.header(rno)}\n{text}\n\nserver log tail:\n{self.fe.log_tail()}\n")

    def handle_failure(self, fl):
        feats = features(fl.qsql)
        errsig = None
        if fl.cls.startswith(("fe_err", "pg_err")):
            # one error on one side: grouped by the error's message (an expression evaluated on
            # rows where the other system does not evaluate it looks the same whatever the query)
            errsig = f"{fl.cls}|msg|{norm_msg(fl.fe.msg if not fl.fe.ok else fl.pg.msg)}"
            if errsig in self.known_signatures() and self.rng.random() < 0.9:
                self.stats["probable_duplicates"] += 1
                with open(os.path.join(self.o.findings_dir, f"dups-{self.o.port}.txt"), "a") as fh:
                    fh.write(f"{errsig} ({fl.kind})\n  {fl.qsql}\n\n")
                return
        # probable duplicate of a finding already written: skip the (slow) shrinking most of the time
        for line in self.known_signatures():
            parts = line.split("|")
            if len(parts) >= 3 and parts[0] == fl.cls:
                known = set(parts[2].split(",")) - {""}
                if known <= set(feats) and self.rng.random() < 0.75:
                    self.stats["probable_duplicates"] += 1
                    self.log("probable duplicate of", line, "- not shrunk")
                    with open(os.path.join(self.o.findings_dir, f"dups-{self.o.port}.txt"), "a") as fh:
                        fh.write(f"{fl.cls} ({fl.kind}) like {line}\n  {fl.qsql}\n\n")
                    return
        self.log("shrinking", fl.qid, fl.cls, fl.kind)
        t0 = time.time()
        res = None
        if not self.o.no_shrink:
            try:
                res = self.shrink(fl)
            except (Hang, ServerDied) as e:
                self.fe.restart()
                res = None
        if res is None:
            # not reproducible alone (or not shrunk): record it as it happened
            sig = errsig or f"{fl.cls}|{fl.kind}-unshrunk|{','.join(feats)}"
            body = (f"kind: {fl.cls} ({fl.kind} read), NOT reproduced with this view alone (or shrinking off)\n"
                    f"{self.header(fl.round_no)}\nview {fl.qid}:\n{fl.qsql}\n\n"
                    f"other views live in the same round:\n" + "\n".join("  " + s for s in fl.others) + "\n\n"
                    + scenario_text(fl.scen) + f"\nPostgreSQL:\n{fl.pg.text()}\n\nfreshet:\n{fl.fe.text()}\n\n"
                    + diff_text(fl.fe, fl.pg))
            self.write_finding(sig, body)
            return
        q, qsql, scen = res
        c, f, p = self.scenario(qsql, scen, fl.kind)
        other = "adhoc" if fl.kind == "view" else "view"
        c2, f2, _ = self.scenario(qsql, scen, other)
        feats = features(qsql)
        sig = errsig or f"{fl.cls}|{fl.kind}|{','.join(feats)}"
        body = (f"kind: {fl.cls} on the {fl.kind} read (the {other} read: {'also differs (' + c2 + ')' if c2 else 'agrees'})\n"
                f"{self.header(fl.round_no)}shrunk in {time.time() - t0:.0f}s\n\n"
                + scenario_text(scen, qsql)
                + f"\n-- PostgreSQL result of the query:\n{p.text() if p else '-'}\n\n"
                + f"-- freshet result ({fl.kind}):\n{f.text() if f else '-'}\n\n"
                + (f"-- freshet result ({other}):\n{f2.text()}\n\n" if c2 and f2 else "")
                + (diff_text(f, p) if (f and p) else ""))
        body += f"\n-- original query ({fl.qid}):\n{fl.qsql}\n"
        self.write_finding(sig, body)

    def after_hang(self):
        """What the server does after a request timed out: does it answer at all, and a SELECT?"""
        out = []
        for i in range(6):
            try:
                r = self.fe.sess.get(self.fe.url + "/readyz", timeout=5)
                out.append(f"+{i * 10}s readyz {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                out.append(f"+{i * 10}s readyz failed: {type(e).__name__}")
            try:
                r = self.fe.sess.post(self.fe.url + "/v1/sql", json={"sql": "SELECT count(*) FROM t1"}, timeout=5)
                out.append(f"+{i * 10}s SELECT count(*) FROM t1: {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                out.append(f"+{i * 10}s SELECT failed: {type(e).__name__}")
            time.sleep(5)
        out.append(f"server alive: {self.fe.alive()}; log tail:\n{self.fe.log_tail(20)}")
        return "\n".join(out)

    def run(self):
        self.fe.start()
        self.log(f"freshet up (pid {self.fe.proc.pid}), log {self.fe.log_path}")
        rno = 0
        deadline = self.start_time + self.o.minutes * 60 if self.o.minutes else None
        while self.stats["accepted"] < self.o.queries and (deadline is None or time.time() < deadline):
            rno += 1
            try:
                fails = self.round(rno)
                for fl in fails:
                    if deadline and time.time() > deadline + 300:
                        break
                    self.handle_failure(fl)
            except Hang as e:
                self.stats["hangs"] += 1
                self.record_simple("hang", f"{e}\nround {rno}\n\n{self.after_hang()}\nlast requests:\n"
                                   + "\n".join(self.fe.recent), rno)
                self.fe.restart()
            except ServerDied as e:
                self.stats["crashes"] += 1
                self.record_simple("crash", f"server died: {e}\nround {rno}\nlog tail:\n{self.fe.log_tail(80)}", rno)
                self.fe.restart()
            pan = self.fe.panics()
            if pan and self.stats["panic_lines_seen"] < len(pan):
                self.record_simple("panic", "\n".join(pan[self.stats["panic_lines_seen"]:][:20]), rno)
                self.stats["panic_lines_seen"] = len(pan)
            if rno % 5 == 0:
                self.log(self.summary_line())
        self.fe.stop()
        self.report()

    def summary_line(self):
        s = self.stats
        acc = s["accepted"] / max(1, s["accepted"] + s["refused"] + s["rejected"])
        return (f"generated {s['generated']} pg_invalid {s['pg_invalid']} accepted {s['accepted']} "
                f"refused {s['refused']} rejected {s['rejected']} (acceptance {acc:.1%}) steps {s['steps']} "
                f"view checks {s['checks_view']} adhoc checks {s['checks_adhoc']} mismatches {s['mismatches']} "
                f"findings {s['findings']} dups {s['duplicate_findings'] + s['probable_duplicates']}")

    def report(self):
        self.log("DONE", self.summary_line())
        self.log("stats", dict(self.stats))
        self.log("top refusals/rejections:")
        for m, c in self.refusals.most_common(25):
            self.log(f"  {c:5d}  {m}")
        rec = {"seed": self.o.seed, "workers": self.o.workers, "elapsed": time.time() - self.start_time,
               "stats": dict(self.stats), "refusals": dict(self.refusals), "findings": self.findings}
        with open(os.path.join(self.o.findings_dir, "runs.jsonl"), "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def norm_msg(m):
    m = m or ""
    m = re.sub(r"\"[^\"]*\"|'[^']*'", "…", m)
    m = re.sub(r"\d+", "N", m)
    return m[:160]


def ddmin(lst, test):
    lst = list(lst)
    if not lst:
        return lst
    chunk = max(1, len(lst) // 2)
    while True:
        i = 0
        while i < len(lst):
            cand = lst[:i] + lst[i + chunk:]
            if test(cand):
                lst = cand
            else:
                i += chunk
        if chunk == 1:
            break
        chunk = max(1, chunk // 2)
    return lst


def scenario_text(scen, qsql=None):
    s = "-- tables\n" + (CREATE_TABLES + INDEX_SQL).replace("; ", ";\n") + ";\n"
    pre = [step_sql({"kind": "insert", "table": t, "rows": rs}) + ";" for t, rs in scen["pre"].items() if rs]
    if pre:
        s += "-- data before the view\n" + "\n".join(pre) + "\n"
    if qsql:
        s += f"-- the view\nCREATE VIEW v AS {qsql};\n"
    if scen["steps"]:
        s += "-- then (one statement per timestamp)\n" + "\n".join(step_sql(st) + ";" for st in scen["steps"]) + "\n"
    if qsql:
        s += f"-- compare: SELECT * FROM v  (freshet)  with  {qsql}  (PostgreSQL)\n"
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--binary", default=os.path.normpath(os.path.join(here, "../../../target/release/freshet")))
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=200, help="accepted views to test")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit)")
    ap.add_argument("--views-per-round", type=int, default=5)
    ap.add_argument("--indexes", type=int, default=3,
                    help="random CREATE INDEX statements on freshet's tables (results must not change)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dml-extra", type=float, default=1.0,
                    help="weight of INSERT … SELECT and DELETE … WHERE x IN (SELECT …) steps (vs 4 / 2.5 / 3.5 for "
                         "INSERT VALUES / DELETE / UPDATE)")
    ap.add_argument("--max-rows", type=int, default=12, help="rows per table at the start of a round")
    ap.add_argument("--adhoc-p", type=float, default=0.15, help="chance of an ad-hoc check per view and step")
    ap.add_argument("--div-col-p", type=float, default=0.03, help="chance that a division divides by a column")
    ap.add_argument("--no-subqueries", dest="subqueries", action="store_false")
    ap.add_argument("--no-lateral", dest="lateral", action="store_false")
    ap.add_argument("--corr-cmp-p", type=float, default=0.1,
                    help="chance that a correlation compares with <, >= or <> instead of =")
    ap.add_argument("--shrink-secs", type=float, default=180)
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--findings-dir", default="/tmp/fuzz-findings")
    ap.add_argument("--pg-dsn", default=os.environ.get("PG_DSN", "host=127.0.0.1 port=5433 user=postgres dbname=postgres"))
    ap.add_argument("--avoid-known", action="store_true",
                    help="steer away from bugs already found (string_agg DISTINCT, expressions as grouping-set "
                         "keys, positional ORDER BY in LATERAL, LEFT JOIN LATERAL aggregates with an ON "
                         "condition, string_agg ORDER BY beside generate_series)")
    ap.add_argument("--bare-decimals", action="store_true",
                    help="write float literals as 1.5 (numeric in PostgreSQL) instead of CAST(1.5 AS double precision)")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    global BARE_DECIMALS
    BARE_DECIMALS = opts.bare_decimals
    fz = Fuzzer(opts)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    try:
        fz.run()
    except KeyboardInterrupt:
        fz.report()
    finally:
        fz.fe.stop()


if __name__ == "__main__":
    main()
