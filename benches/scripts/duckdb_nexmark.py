"""DuckDB, from scratch: loads the Nexmark CSV files written by `freshet-bench nexmark` and
runs each query over all of them, as a batch system would on every refresh.

Usage: duckdb_nexmark.py DIR QUERY... ; prints one JSON object per line:
{"load_s": …} first, then {"query": "q0", "seconds": …, "rows": …} (or "error").
The SQL is the standard Nexmark text in DuckDB's dialect: windows by `time_bucket`, FILTER
clauses and ROW_NUMBER() as written, DATE_FORMAT as `strftime`.
"""
import json
import sys
import time

import duckdb

from nexmark_sql import DISTINCTS, RANKS

SIDE = "CREATE TABLE side_input AS SELECT range AS key, 'v' || range AS value FROM range(10000)"

QUERIES = {
    "q0": "SELECT auction, bidder, price, date_time, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """SELECT P.name, P.city, P.state, A.id
             FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
             WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')""",
    "q4": """SELECT Q.category, avg(Q.final) AS avg
             FROM (SELECT max(B.price) AS final, A.category FROM auction A, bid B
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
                   GROUP BY A.id, A.category) Q
             GROUP BY Q.category""",
    "q5": """WITH counts AS (
               SELECT auction, starttime, count(*) AS num FROM (
                 SELECT auction,
                   time_bucket(INTERVAL '2 seconds', date_time) - to_seconds(2 * k) AS starttime
                 FROM bid, range(5) AS t(k))
               GROUP BY auction, starttime),
             maxes AS (SELECT starttime, max(num) AS maxn FROM counts GROUP BY starttime)
             SELECT c.auction, c.num FROM counts c JOIN maxes m
             ON c.starttime = m.starttime AND c.num >= m.maxn""",
    "q7": """SELECT B.auction, B.price, B.bidder, B.date_time, B.extra FROM bid B
             JOIN (SELECT max(price) AS maxprice,
                     time_bucket(INTERVAL '10 seconds', date_time) + INTERVAL '10 seconds' AS date_time
                   FROM bid GROUP BY 2) B1
             ON B.price = B1.maxprice
             WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10 seconds' AND B1.date_time""",
    "q8": """SELECT P.id, P.name, P.starttime
             FROM (SELECT id, name, time_bucket(INTERVAL '10 seconds', date_time) AS starttime
                   FROM person GROUP BY id, name, starttime) P
             JOIN (SELECT seller, time_bucket(INTERVAL '10 seconds', date_time) AS starttime
                   FROM auction GROUP BY seller, starttime) A
             ON P.id = A.seller AND P.starttime = A.starttime""",
    "q9": """SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller,
               category, extra, auction, bidder, price, bid_date_time, bid_extra
             FROM (SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time,
                     B.extra AS bid_extra,
                     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum
                   FROM auction A, bid B
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires)
             WHERE rownum <= 1""",
    "q13": """SELECT B.auction, B.bidder, B.price, B.date_time, S.value
              FROM bid B JOIN side_input S ON B.auction % 10000 = S.key""",
    "q15": f"""SELECT strftime(date_time, '%Y-%m-%d') AS day, count(*) AS total_bids, {RANKS}, {DISTINCTS}
               FROM bid GROUP BY 1""",
    "q16": f"""SELECT channel, strftime(date_time, '%Y-%m-%d') AS day,
                 max(strftime(date_time, '%H:%M')) AS minute, count(*) AS total_bids, {RANKS}, {DISTINCTS}
               FROM bid GROUP BY 1, 2""",
    "q17": f"""SELECT auction, strftime(date_time, '%Y-%m-%d') AS day, count(*) AS total_bids, {RANKS},
                 min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
                 sum(price) AS sum_price
               FROM bid GROUP BY 1, 2""",
    "q18": """SELECT auction, bidder, price, channel, url, date_time, extra
              FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rank_number
                    FROM bid)
              WHERE rank_number <= 1""",
    "q19": """SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number
                            FROM bid)
              WHERE rank_number <= 10""",
    "q20": """SELECT auction, bidder, price, channel, url, B.date_time AS date_time, B.extra AS extra,
                item_name, description, initial_bid, reserve, A.date_time AS auction_date_time,
                expires, seller, category, A.extra AS auction_extra
              FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10""",
    "q22": """SELECT auction, bidder, price, channel, split_part(url, '/', 4) AS dir1,
                split_part(url, '/', 5) AS dir2, split_part(url, '/', 6) AS dir3 FROM bid""",
}

TYPES = {
    "person": {"id": "BIGINT", "name": "VARCHAR", "email_address": "VARCHAR",
               "credit_card": "VARCHAR", "city": "VARCHAR", "state": "VARCHAR",
               "date_time": "TIMESTAMP", "extra": "VARCHAR"},
    "auction": {"id": "BIGINT", "item_name": "VARCHAR", "description": "VARCHAR",
                "initial_bid": "BIGINT", "reserve": "BIGINT", "date_time": "TIMESTAMP",
                "expires": "TIMESTAMP", "seller": "BIGINT", "category": "BIGINT",
                "extra": "VARCHAR"},
    "bid": {"auction": "BIGINT", "bidder": "BIGINT", "price": "BIGINT", "channel": "VARCHAR",
            "url": "VARCHAR", "date_time": "TIMESTAMP", "extra": "VARCHAR"},
}


def main(directory, names):
    con = duckdb.connect()
    start = time.perf_counter()
    for table, columns in TYPES.items():
        cols = ", ".join(f"'{c}': '{t}'" for c, t in columns.items())
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv('{directory}/{table}.csv', "
            f"header = true, columns = {{{cols}}})"
        )
    con.execute(SIDE)
    print(json.dumps({"load_s": time.perf_counter() - start,
                      "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
                      "version": duckdb.__version__}), flush=True)
    for name in names:
        sql = QUERIES.get(name)
        if sql is None:
            continue
        try:
            start = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE result AS {sql}")
            seconds = time.perf_counter() - start
            rows = con.execute("SELECT count(*) FROM result").fetchone()[0]
            print(json.dumps({"query": name, "seconds": seconds, "rows": rows}), flush=True)
        except duckdb.Error as e:
            print(json.dumps({"query": name, "error": str(e)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
