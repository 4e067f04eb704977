"""Flink SQL (PyFlink's local mini-cluster): the Nexmark queries over the CSV files written by
`freshet-bench nexmark`, each into a blackhole sink, in batch or streaming mode.

In streaming mode (Flink's incremental execution, freshet's peer) `date_time` is each table's
event-time attribute, with a watermark 5 seconds behind the largest time seen; the generator's
events are at most a few hundred milliseconds out of order, so no window loses a row. The
bounded files end with a final watermark that closes every window.

Usage: flink_nexmark.py DIR PARALLELISM MODE QUERY... (MODE: batch | streaming); prints one JSON object per line,
{"query": "q0", "seconds": …} or {"query": …, "error": …}, after {"startup_s": …}.
Needs JAVA_HOME (a JDK 17). The SQL is the standard Nexmark text with the generator's column
names; windows use Flink's TUMBLE/HOP table-valued functions.
"""
import json
import os
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment

from nexmark_sql import DISTINCTS, RANKS

SCHEMAS = {
    "person": "id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING, "
    "state STRING, date_time TIMESTAMP(3), extra STRING",
    "auction": "id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, "
    "reserve BIGINT, date_time TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, "
    "category BIGINT, extra STRING",
    "bid": "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, "
    "date_time TIMESTAMP(3), extra STRING",
}

QUERIES = {
    "q0": "SELECT auction, bidder, price, date_time, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q3": """SELECT P.name, P.city, P.state, A.id
             FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
             WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')""",
    "q4": """SELECT Q.category, AVG(Q.final) AS avg_final
             FROM (SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
                   GROUP BY A.id, A.category) Q
             GROUP BY Q.category""",
    "q5": """SELECT AuctionBids.auction, AuctionBids.num FROM (
               SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
               FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
               GROUP BY auction, window_start, window_end) AS AuctionBids
             JOIN (
               SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (
                 SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
                 FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
                 GROUP BY auction, window_start, window_end) AS CountBids
               GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids
             ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
                AND AuctionBids.num >= MaxBids.maxn""",
    "q7": """SELECT B.auction, B.price, B.bidder, B.date_time, B.extra FROM bid B
             JOIN (SELECT MAX(price) AS maxprice, window_end AS date_time
                   FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
                   GROUP BY window_start, window_end) B1
             ON B.price = B1.maxprice
             WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time""",
    "q8": """SELECT P.id, P.name, P.starttime FROM (
               SELECT id, name, window_start AS starttime, window_end AS endtime
               FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
               GROUP BY id, name, window_start, window_end) P
             JOIN (
               SELECT seller, window_start AS starttime, window_end AS endtime
               FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
               GROUP BY seller, window_start, window_end) A
             ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime""",
    "q9": """SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller,
               category, extra, auction, bidder, price, bid_date_time, bid_extra
             FROM (SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time,
                     B.extra AS bid_extra,
                     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum
                   FROM auction A, bid B
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires)
             WHERE rownum <= 1""",
    "q13": """SELECT B.auction, B.bidder, B.price, B.date_time, S.`value`
              FROM bid B JOIN side_input S ON MOD(B.auction, 10000) = S.`key`""",
    "q15": f"""SELECT DATE_FORMAT(date_time, 'yyyy-MM-dd') AS `day`, count(*) AS total_bids, {RANKS}, {DISTINCTS}
               FROM bid GROUP BY DATE_FORMAT(date_time, 'yyyy-MM-dd')""",
    "q16": f"""SELECT channel, DATE_FORMAT(date_time, 'yyyy-MM-dd') AS `day`,
                 max(DATE_FORMAT(date_time, 'HH:mm')) AS `minute`, count(*) AS total_bids, {RANKS}, {DISTINCTS}
               FROM bid GROUP BY channel, DATE_FORMAT(date_time, 'yyyy-MM-dd')""",
    "q17": f"""SELECT auction, DATE_FORMAT(date_time, 'yyyy-MM-dd') AS `day`, count(*) AS total_bids, {RANKS},
                 min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
                 sum(price) AS sum_price
               FROM bid GROUP BY auction, DATE_FORMAT(date_time, 'yyyy-MM-dd')""",
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
    "q22": """SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
                SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3 FROM bid""",
}


def headerless(directory, table):
    """Flink's CSV format has no header option: a copy without the first line."""
    # Absolute: the filesystem connector reads `file://` URLs.
    out_dir = os.path.join(os.path.abspath(directory), "flink")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{table}.csv")
    with open(os.path.join(directory, f"{table}.csv")) as src, open(out, "w") as dst:
        src.readline()
        for line in src:
            dst.write(line)
    return out


def root_cause(e):
    """The innermost cause of a failed job: the Java exception's last "Caused by" line."""
    text = str(e)
    causes = [l.strip() for l in text.splitlines() if l.strip().startswith("Caused by:")]
    line = causes[-1] if causes else text.splitlines()[0]
    return line[:300]


def main(directory, parallelism, mode, names):
    start = time.perf_counter()
    settings = (
        EnvironmentSettings.in_streaming_mode()
        if mode == "streaming"
        else EnvironmentSettings.in_batch_mode()
    )
    env = TableEnvironment.create(settings)
    env.get_config().set("parallelism.default", str(parallelism))
    for table, schema in SCHEMAS.items():
        path = headerless(directory, table)
        if mode == "streaming":
            schema += ", WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND"
        env.execute_sql(
            f"CREATE TABLE {table} ({schema}) WITH ('connector' = 'filesystem', "
            f"'path' = 'file://{path}', 'format' = 'csv')"
        )
    env.execute_sql(
        "CREATE TABLE side_keys (`key` BIGINT) WITH ('connector' = 'datagen', "
        "'number-of-rows' = '10000', 'fields.key.kind' = 'sequence', "
        "'fields.key.start' = '0', 'fields.key.end' = '9999')"
    )
    env.execute_sql(
        "CREATE TEMPORARY VIEW side_input AS "
        "SELECT `key`, CONCAT('v', CAST(`key` AS STRING)) AS `value` FROM side_keys"
    )
    print(json.dumps({"startup_s": time.perf_counter() - start}), flush=True)
    for name in names:
        sql = QUERIES.get(name)
        if sql is None:
            continue
        try:
            table = env.sql_query(sql)
            # A time attribute prints as "TIMESTAMP(3) *ROWTIME*": a plain timestamp in the sink.
            columns = [
                c.asSummaryString().replace(" *ROWTIME*", "")
                for c in table._j_table.getResolvedSchema().getColumns()
            ]
            sink = f"sink_{name}"
            env.execute_sql(
                f"CREATE TABLE {sink} ({', '.join(columns)}) WITH ('connector' = 'blackhole')"
            )
            start = time.perf_counter()
            table.execute_insert(sink).wait()
            print(json.dumps({"query": name, "seconds": time.perf_counter() - start}), flush=True)
        except Exception as e:  # noqa: BLE001 — report any failure as the query's result
            print(json.dumps({"query": name, "error": root_cause(e)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:])
