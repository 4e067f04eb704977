//! The Nexmark queries as freshet SQL views over the generator sources.
//!
//! The texts follow the Flink / RisingWave versions of the benchmark with the generator's
//! column names (`date_time`, `item_name`, …). Where freshet's SQL lacks a construct, `sql` is
//! a rewrite with the same result and `original` is the standard text, which the harness sends
//! too so that the report quotes the server's own error. Queries with no equivalent rewrite
//! have `sql: None`.

/// A Nexmark stream, one generator source each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Person,
    Auction,
    Bid,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Person => "person",
            Stream::Auction => "auction",
            Stream::Bid => "bid",
        }
    }

    /// Rows of this stream among `events` Nexmark events (1 person : 3 auctions : 46 bids).
    pub fn rows(self, events: u64) -> u64 {
        match self {
            Stream::Person => events / 50,
            Stream::Auction => events / 50 * 3,
            Stream::Bid => events / 50 * 46,
        }
    }
}

pub struct Query {
    pub name: &'static str,
    pub title: &'static str,
    pub streams: &'static [Stream],
    /// A 10,000-row table `side_input(key, value)` (q13).
    pub side_input: bool,
    /// The view's query as freshet runs it; `None` when it cannot be expressed.
    pub sql: Option<&'static str>,
    /// The standard text when `sql` is a rewrite or missing (sent for the server's error).
    pub original: Option<&'static str>,
    /// What the rewrite changes.
    pub rewrite: &'static str,
}

use Stream::{Auction, Bid, Person};

/// Rows of the side input of q13: `(key, 'v' || key)` for keys below this.
pub const SIDE_INPUT_KEYS: u64 = 10_000;

pub const QUERIES: &[Query] = &[
    Query {
        name: "q0",
        title: "pass-through",
        streams: &[Bid],
        side_input: false,
        sql: Some("SELECT auction, bidder, price, date_time, extra FROM bid"),
        original: None,
        rewrite: "",
    },
    Query {
        name: "q1",
        title: "currency conversion",
        streams: &[Bid],
        side_input: false,
        sql: Some("SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid"),
        original: None,
        rewrite: "",
    },
    Query {
        name: "q2",
        title: "selection",
        streams: &[Bid],
        side_input: false,
        sql: Some("SELECT auction, price FROM bid WHERE mod(auction, 123) = 0"),
        original: None,
        rewrite: "",
    },
    Query {
        name: "q3",
        title: "local item suggestion",
        streams: &[Auction, Person],
        side_input: false,
        sql: Some(
            "SELECT P.name, P.city, P.state, A.id \
             FROM auction AS A INNER JOIN person AS P ON A.seller = P.id \
             WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')",
        ),
        original: None,
        rewrite: "",
    },
    Query {
        name: "q4",
        title: "average price per category",
        streams: &[Auction, Bid],
        side_input: false,
        sql: Some(
            "SELECT Q.category, avg(Q.final) AS avg \
             FROM (SELECT max(B.price) AS final, A.category \
                   FROM auction A, bid B \
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires \
                   GROUP BY A.id, A.category) Q \
             GROUP BY Q.category",
        ),
        original: None,
        rewrite: "",
    },
    Query {
        name: "q5",
        title: "hot items (hopping windows)",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT AuctionBids.auction, AuctionBids.num \
             FROM (SELECT auction, count(*) AS num, \
                     hop(date_time, INTERVAL '10 seconds', INTERVAL '2 seconds') AS starttime, \
                     hop_end(date_time, INTERVAL '10 seconds', INTERVAL '2 seconds') AS endtime \
                   FROM bid GROUP BY auction, starttime) AS AuctionBids \
             JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime \
                   FROM (SELECT count(*) AS num, \
                           hop(date_time, INTERVAL '10 seconds', INTERVAL '2 seconds') AS starttime, \
                           hop_end(date_time, INTERVAL '10 seconds', INTERVAL '2 seconds') AS endtime \
                         FROM bid GROUP BY auction, starttime) AS CountBids \
                   GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids \
             ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime \
                AND AuctionBids.num >= MaxBids.maxn",
        ),
        original: None,
        rewrite: "`HOP(TABLE bid, DESCRIPTOR(date_time), …)` table function written as freshet's `hop(date_time, size, slide)` group key",
    },
    Query {
        name: "q7",
        title: "highest bid (tumbling windows)",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT B.auction, B.price, B.bidder, B.date_time, B.extra \
             FROM bid B \
             JOIN (SELECT max(price) AS maxprice, tumble_end(date_time, INTERVAL '10 seconds') AS date_time \
                   FROM bid GROUP BY 2) B1 \
             ON B.price = B1.maxprice \
             WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10 seconds' AND B1.date_time",
        ),
        original: None,
        rewrite: "`TUMBLE(TABLE bid, …)` table function written as freshet's `tumble_end(date_time, size)` group key",
    },
    Query {
        name: "q8",
        title: "monitor new users (tumbling windows)",
        streams: &[Auction, Person],
        side_input: false,
        sql: Some(
            "SELECT P.id, P.name, P.starttime \
             FROM (SELECT id, name, tumble(date_time, INTERVAL '10 seconds') AS starttime, \
                     tumble_end(date_time, INTERVAL '10 seconds') AS endtime \
                   FROM person GROUP BY id, name, starttime, endtime) P \
             JOIN (SELECT seller, tumble(date_time, INTERVAL '10 seconds') AS starttime, \
                     tumble_end(date_time, INTERVAL '10 seconds') AS endtime \
                   FROM auction GROUP BY seller, starttime, endtime) A \
             ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime",
        ),
        original: None,
        rewrite: "`TUMBLE(TABLE …)` table functions written as freshet's `tumble`/`tumble_end` group keys",
    },
    Query {
        name: "q9",
        title: "winning bids",
        streams: &[Auction, Bid],
        side_input: false,
        sql: Some(
            "SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, \
               category, extra, auction, bidder, price, bid_date_time, bid_extra \
             FROM (SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time, \
                     B.extra AS bid_extra, \
                     ROW_NUMBER() OVER (PARTITION BY A.id \
                       ORDER BY B.price DESC, B.date_time ASC, B.bidder ASC, B.extra ASC) AS rownum \
                   FROM auction A, bid B \
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires) AS T \
             WHERE rownum <= 1",
        ),
        original: Some(
            "SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, \
               category, extra, auction, bidder, price, bid_date_time, bid_extra \
             FROM (SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time, \
                     B.extra AS bid_extra, \
                     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum \
                   FROM auction A, bid B \
                   WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires) AS T \
             WHERE rownum <= 1",
        ),
        rewrite: "`B.bidder, B.extra` added to the window's ORDER BY, so ties have one answer to compare",
    },
    Query {
        name: "q13",
        title: "bounded side input join",
        streams: &[Bid],
        side_input: true,
        sql: Some(
            "SELECT B.auction, B.bidder, B.price, B.date_time, S.value \
             FROM bid B JOIN side_input S ON mod(B.auction, 10000) = S.key",
        ),
        original: Some(
            "SELECT B.auction, B.bidder, B.price, B.date_time, S.value \
             FROM bid B JOIN side_input FOR SYSTEM_TIME AS OF B.date_time AS S \
             ON mod(B.auction, 10000) = S.key",
        ),
        rewrite: "the processing-time lookup join `FOR SYSTEM_TIME AS OF` as a plain join with the table (the same result, as the table does not change)",
    },
    Query {
        name: "q15",
        title: "bidding statistics per day",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT CAST(date_time AS date) AS day, \
               count(*) AS total_bids, \
               count(*) FILTER (WHERE price < 10000) AS rank1_bids, \
               count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids, \
               count(*) FILTER (WHERE price >= 1000000) AS rank3_bids, \
               count(DISTINCT bidder) AS total_bidders, \
               count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders, \
               count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders, \
               count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders, \
               count(DISTINCT auction) AS total_auctions, \
               count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions, \
               count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions, \
               count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions \
             FROM bid GROUP BY 1",
        ),
        original: None,
        rewrite: "`DATE_FORMAT(date_time, 'yyyy-MM-dd')` as `CAST(date_time AS date)` (freshet has no `date_format`/`to_char`)",
    },
    Query {
        name: "q16",
        title: "channel statistics per day",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT channel, CAST(date_time AS date) AS day, \
               max(substr(CAST(date_time AS text), 12, 5)) AS minute, \
               count(*) AS total_bids, \
               count(CASE WHEN price < 10000 THEN 1 END) AS rank1_bids, \
               count(CASE WHEN price >= 10000 AND price < 1000000 THEN 1 END) AS rank2_bids, \
               count(CASE WHEN price >= 1000000 THEN 1 END) AS rank3_bids, \
               count(DISTINCT bidder) AS total_bidders, \
               count(DISTINCT CASE WHEN price < 10000 THEN bidder END) AS rank1_bidders, \
               count(DISTINCT CASE WHEN price >= 10000 AND price < 1000000 THEN bidder END) AS rank2_bidders, \
               count(DISTINCT CASE WHEN price >= 1000000 THEN bidder END) AS rank3_bidders, \
               count(DISTINCT auction) AS total_auctions, \
               count(DISTINCT CASE WHEN price < 10000 THEN auction END) AS rank1_auctions, \
               count(DISTINCT CASE WHEN price >= 10000 AND price < 1000000 THEN auction END) AS rank2_auctions, \
               count(DISTINCT CASE WHEN price >= 1000000 THEN auction END) AS rank3_auctions \
             FROM bid GROUP BY 1, 2",
        ),
        original: None,
        rewrite: "as q15; `max(DATE_FORMAT(date_time, 'HH:mm'))` as `max(substr(CAST(date_time AS text), 12, 5))`",
    },
    Query {
        name: "q17",
        title: "auction statistics per day",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT auction, CAST(date_time AS date) AS day, \
               count(*) AS total_bids, \
               count(CASE WHEN price < 10000 THEN 1 END) AS rank1_bids, \
               count(CASE WHEN price >= 10000 AND price < 1000000 THEN 1 END) AS rank2_bids, \
               count(CASE WHEN price >= 1000000 THEN 1 END) AS rank3_bids, \
               min(price) AS min_price, max(price) AS max_price, \
               avg(price) AS avg_price, sum(price) AS sum_price \
             FROM bid GROUP BY 1, 2",
        ),
        original: None,
        rewrite: "as q15",
    },
    Query {
        name: "q18",
        title: "last bid per bidder and auction",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT auction, bidder, price, channel, url, date_time, extra \
             FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction \
                     ORDER BY date_time DESC, price DESC, channel DESC, url DESC, extra DESC) AS rank_number \
                   FROM bid) AS T \
             WHERE rank_number <= 1",
        ),
        original: Some(
            "SELECT auction, bidder, price, channel, url, date_time, extra \
             FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rank_number \
                   FROM bid) AS T \
             WHERE rank_number <= 1",
        ),
        rewrite: "the other columns added to the window's ORDER BY, so ties have one answer to compare",
    },
    Query {
        name: "q19",
        title: "top 10 bids per auction",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT * FROM \
               (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction \
                  ORDER BY price DESC, bidder DESC, date_time DESC, channel DESC, url DESC, extra DESC) AS rank_number \
                FROM bid) AS T \
             WHERE rank_number <= 10",
        ),
        original: Some(
            "SELECT * FROM \
               (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number \
                FROM bid) AS T \
             WHERE rank_number <= 10",
        ),
        rewrite: "the other columns added to the window's ORDER BY, so ties have one answer to compare",
    },
    Query {
        name: "q20",
        title: "expand bids with auctions",
        streams: &[Auction, Bid],
        side_input: false,
        sql: Some(
            "SELECT auction, bidder, price, channel, url, B.date_time AS date_time, B.extra AS extra, \
               item_name, description, initial_bid, reserve, A.date_time AS auction_date_time, \
               expires, seller, category, A.extra AS auction_extra \
             FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id \
             WHERE A.category = 10",
        ),
        original: None,
        rewrite: "the two `date_time` and `extra` columns renamed (a view's columns need distinct names)",
    },
    Query {
        name: "q22",
        title: "split the URL",
        streams: &[Bid],
        side_input: false,
        sql: Some(
            "SELECT auction, bidder, price, channel, \
               split_part(url, '/', 4) AS dir1, split_part(url, '/', 5) AS dir2, \
               split_part(url, '/', 6) AS dir3 \
             FROM bid",
        ),
        original: None,
        rewrite: "Flink's 0-based `SPLIT_INDEX(url, '/', 3)` as PostgreSQL's 1-based `split_part(url, '/', 4)`",
    },
];

pub fn find(name: &str) -> Option<&'static Query> {
    QUERIES.iter().find(|q| q.name.eq_ignore_ascii_case(name))
}

/// `CREATE SOURCE` statements for the streams a query reads, `events` Nexmark events in all.
pub fn sources_sql(q: &Query, events: u64, base_time: u64) -> String {
    q.streams
        .iter()
        .map(|s| {
            format!(
                "CREATE SOURCE {} FROM GENERATOR NEXMARK (stream = '{}', events = {}, base_time = {base_time})",
                s.name(),
                s.name(),
                s.rows(events)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
