//! The Nexmark queries hand-written in differential dataflow over typed tuples: what freshet's
//! SQL views are measured against.
//!
//! Each query takes the three streams as collections of typed events and returns its result,
//! arranged (freshet arranges every view's result for reads; so does this) and readable after
//! the run as rows of freshet values for the comparison. The plans are those freshet's SQL
//! lowers to (joins on the same keys, one `reduce` per `GROUP BY`), written as a differential
//! programmer would, except q15 and q16: their `count(DISTINCT …)` per day would be one group
//! holding every bid of the day, which no one would write by hand; here they are `distinct`
//! then `count` per rank, joined per group by a small `reduce`.

use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::trace::TraceReader;
use differential_dataflow::{ExchangeData, Hashable, VecCollection};
use freshet_dataflows::Value;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::progress::Antichain;

/// Logical time: milliseconds since the run started, as freshet's ingestion time.
pub type Time = u64;
pub type Diff = isize;
type Coll<'s, D> = VecCollection<'s, Time, D, Diff>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bid {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub channel: String,
    pub url: String,
    pub date_time: u64,
    pub extra: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Auction {
    pub id: u64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: u64,
    pub reserve: u64,
    pub date_time: u64,
    pub expires: u64,
    pub seller: u64,
    pub category: u64,
    pub extra: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: String,
    pub state: String,
    pub date_time: u64,
    pub extra: String,
}

/// The inputs of one query's dataflow.
pub struct Inputs<'s> {
    pub bids: Coll<'s, Bid>,
    pub auctions: Coll<'s, Auction>,
    pub persons: Coll<'s, Person>,
    pub side: Coll<'s, (u64, String)>,
}

/// Reads the final result out of the arrangement: rows with their multiplicities.
pub type Extract = Box<dyn FnOnce() -> Vec<(Vec<Value>, Diff)>>;

/// Arranges `out` (as freshet arranges a view), probes it, and keeps the trace for reading.
fn finish<'s, D>(out: Coll<'s, D>, probe: &ProbeHandle<Time>, row: fn(&D) -> Vec<Value>) -> Extract
where
    D: ExchangeData + Hashable,
{
    let arranged = out.arrange_by_self();
    arranged.stream.probe_with(probe);
    let mut trace: TraceAgent<KeySpine<D, Time, Diff>> = arranged.trace;
    Box::new(move || {
        let spans = trace
            .spans_through(Antichain::new().borrow())
            .expect("the run's times are readable");
        let (mut cursor, storage) =
            cursor_list(spans.into_iter().filter_map(|s| s.inner).collect());
        cursor
            .to_vec(&storage, |k: &D| k.clone(), |_| ())
            .into_iter()
            .map(|((k, ()), times)| (row(&k), times.iter().map(|(_, d)| d).sum()))
            .filter(|(_, d)| *d != 0)
            .collect()
    })
}

fn int(x: u64) -> Value {
    Value::Int(x as i64)
}
fn ts(ms: u64) -> Value {
    Value::Timestamp(ms as i64 * 1000)
}
fn text(s: &str) -> Value {
    Value::text(s)
}
fn date(ms: u64) -> Value {
    Value::Date((ms / DAY) as i32)
}

const DAY: u64 = 86_400_000;

fn tumble(ms: u64, size: u64) -> u64 {
    ms / size * size
}

/// 0, 1, 2 for prices below 10,000, below 1,000,000, and the rest (q15–q17's ranks).
fn rank(price: u64) -> u8 {
    match price {
        0..10_000 => 0,
        10_000..1_000_000 => 1,
        _ => 2,
    }
}

/// An auction's columns after `id`, in the table's order (q9 and q20 select them all).
fn auction_values(a: &Auction) -> [Value; 9] {
    [
        text(&a.item_name),
        text(&a.description),
        int(a.initial_bid),
        int(a.reserve),
        ts(a.date_time),
        ts(a.expires),
        int(a.seller),
        int(a.category),
        text(&a.extra),
    ]
}

/// PostgreSQL's `split_part(s, delimiter, n)`, `n` counted from 1.
fn split_part(s: &str, delimiter: char, n: usize) -> String {
    s.split(delimiter).nth(n - 1).unwrap_or("").to_string()
}

/// Builds `query`'s dataflow; `None` for queries without a hand-written version.
pub fn build<'s>(query: &str, i: Inputs<'s>, probe: &ProbeHandle<Time>) -> Option<Extract> {
    Some(match query {
        "q0" => finish(
            i.bids
                .map(|b| (b.auction, b.bidder, b.price, b.date_time, b.extra)),
            probe,
            |(a, b, p, t, e)| vec![int(*a), int(*b), int(*p), ts(*t), text(e)],
        ),
        // The product as f64 bits: f64 has no total order; the bits do.
        "q1" => finish(
            i.bids.map(|b| {
                let price = (0.908 * b.price as f64).to_bits();
                (b.auction, b.bidder, price, b.date_time, b.extra)
            }),
            probe,
            |(a, b, p, t, e)| {
                let price = Value::float(f64::from_bits(*p));
                vec![int(*a), int(*b), price, ts(*t), text(e)]
            },
        ),
        "q2" => finish(
            i.bids
                .filter(|b| b.auction % 123 == 0)
                .map(|b| (b.auction, b.price)),
            probe,
            |(a, p)| vec![int(*a), int(*p)],
        ),
        "q3" => {
            let auctions = i
                .auctions
                .filter(|a| a.category == 10)
                .map(|a| (a.seller, a.id));
            let persons = i
                .persons
                .filter(|p| matches!(p.state.as_str(), "or" | "id" | "ca"))
                .map(|p| (p.id, (p.name, p.city, p.state)));
            finish(
                auctions.join_map(persons, |_, id, (name, city, state)| {
                    (name.clone(), city.clone(), state.clone(), *id)
                }),
                probe,
                |(n, c, s, id)| vec![text(n), text(c), text(s), int(*id)],
            )
        }
        "q4" => {
            let auctions = i
                .auctions
                .map(|a| (a.id, (a.category, a.date_time, a.expires)));
            let bids = i.bids.map(|b| (b.auction, (b.price, b.date_time)));
            let finals = auctions
                .join_map(bids, |id, &(category, start, end), &(price, t)| {
                    (start <= t && t <= end).then_some(((*id, category), price))
                })
                .flat_map(|x| x)
                .reduce(|_, vals: &[(&u64, Diff)], out: &mut Vec<(u64, Diff)>| {
                    out.push((*vals[vals.len() - 1].0, 1))
                });
            let avg = finals
                .map(|((_, category), price)| (category, price))
                .reduce(|_, vals: &[(&u64, Diff)], out: &mut Vec<(u64, Diff)>| {
                    let sum: i128 = vals.iter().map(|(v, m)| **v as i128 * *m as i128).sum();
                    let count: isize = vals.iter().map(|(_, m)| m).sum();
                    out.push(((sum as f64 / count as f64).to_bits(), 1));
                });
            finish(avg, probe, |(c, a)| {
                vec![int(*c), Value::float(f64::from_bits(*a))]
            })
        }
        "q5" => {
            let (size, slide) = (10_000, 2_000);
            let counts = i
                .bids
                .flat_map(move |b| {
                    let last = tumble(b.date_time, slide);
                    (0..size / slide).map(move |k| (b.auction, last - k * slide))
                })
                .count();
            let maxes = counts.clone().map(|((_, start), n)| (start, n)).reduce(
                |_, vals: &[(&isize, Diff)], out: &mut Vec<(isize, Diff)>| {
                    out.push((*vals[vals.len() - 1].0, 1))
                },
            );
            let hot = counts
                .map(|((auction, start), n)| (start, (auction, n)))
                .join_map(maxes, |_, &(auction, n), &max| (auction, n, max))
                .filter(|(_, n, max)| n >= max)
                .map(|(auction, n, _)| (auction, n as u64));
            finish(hot, probe, |(a, n)| vec![int(*a), int(*n)])
        }
        "q7" => {
            let size = 10_000;
            let maxes = i
                .bids
                .clone()
                .map(move |b| (tumble(b.date_time, size) + size, b.price))
                .reduce(|_, vals: &[(&u64, Diff)], out: &mut Vec<(u64, Diff)>| {
                    out.push((*vals[vals.len() - 1].0, 1))
                })
                .map(|(end, max)| (max, end));
            let by_price = i
                .bids
                .map(|b| (b.price, (b.auction, b.bidder, b.date_time, b.extra)));
            let out = by_price
                .join_map(maxes, move |&price, (auction, bidder, t, extra), &end| {
                    (end - size <= *t && *t <= end)
                        .then(|| (*auction, price, *bidder, *t, extra.clone()))
                })
                .flat_map(|x| x);
            finish(out, probe, |(a, p, b, t, e)| {
                vec![int(*a), int(*p), int(*b), ts(*t), text(e)]
            })
        }
        "q8" => {
            let size = 10_000;
            let persons = i
                .persons
                .map(move |p| ((p.id, tumble(p.date_time, size)), p.name))
                .distinct();
            let sellers = i
                .auctions
                .map(move |a| (a.seller, tumble(a.date_time, size)))
                .distinct()
                .map(|k| (k, ()));
            let out = persons.join_map(sellers, |&(id, start), name, ()| (id, name.clone(), start));
            finish(out, probe, |(id, n, s)| vec![int(*id), text(n), ts(*s)])
        }
        "q9" => {
            // Per auction, the bid in its lifetime with the highest price (then the earliest,
            // then the least bidder and extra): the least (u64::MAX - price, time, bidder,
            // extra) among the auction's bids.
            type Winner = ((u64, u64, u64, String), u64);
            let auctions = i.auctions.map(|a| (a.id, a));
            let bids = i.bids.map(|b| (b.auction, b));
            let winners = auctions
                .join_map(bids, |_, a, b| {
                    (a.date_time <= b.date_time && b.date_time <= a.expires).then(|| {
                        let key = (u64::MAX - b.price, b.date_time, b.bidder, b.extra.clone());
                        (a.clone(), (key, b.auction))
                    })
                })
                .flat_map(|x| x)
                .reduce(
                    |_, vals: &[(&Winner, Diff)], out: &mut Vec<(Winner, Diff)>| {
                        out.push((vals[0].0.clone(), 1))
                    },
                );
            finish(winners, probe, |(a, ((inv, t, bidder, extra), auction))| {
                let mut row = vec![int(a.id)];
                row.extend(auction_values(a));
                row.extend([
                    int(*auction),
                    int(*bidder),
                    int(u64::MAX - inv),
                    ts(*t),
                    text(extra),
                ]);
                row
            })
        }
        "q18" => {
            // Per (bidder, auction), the greatest (time, price, channel, url, extra).
            type Last = (u64, u64, String, String, String);
            let last = i
                .bids
                .map(|b| {
                    (
                        (b.bidder, b.auction),
                        (b.date_time, b.price, b.channel, b.url, b.extra),
                    )
                })
                .reduce(|_, vals: &[(&Last, Diff)], out: &mut Vec<(Last, Diff)>| {
                    out.push((vals[vals.len() - 1].0.clone(), 1))
                });
            finish(
                last,
                probe,
                |((bidder, auction), (t, price, channel, url, extra))| {
                    vec![
                        int(*auction),
                        int(*bidder),
                        int(*price),
                        text(channel),
                        text(url),
                        ts(*t),
                        text(extra),
                    ]
                },
            )
        }
        "q19" => {
            // Per auction, the 10 greatest (price, bidder, time, channel, url, extra), numbered.
            type Ranked = (u64, u64, u64, String, String, String);
            let top = i
                .bids
                .map(|b| {
                    (
                        b.auction,
                        (b.price, b.bidder, b.date_time, b.channel, b.url, b.extra),
                    )
                })
                .reduce(
                    |_, vals: &[(&Ranked, Diff)], out: &mut Vec<((Ranked, u64), Diff)>| {
                        let mut n = 0u64;
                        for (v, m) in vals.iter().rev() {
                            for _ in 0..*m {
                                if n == 10 {
                                    return;
                                }
                                n += 1;
                                out.push((((*v).clone(), n), 1));
                            }
                        }
                    },
                );
            finish(
                top,
                probe,
                |(auction, ((price, bidder, t, channel, url, extra), n))| {
                    vec![
                        int(*auction),
                        int(*bidder),
                        int(*price),
                        text(channel),
                        text(url),
                        ts(*t),
                        text(extra),
                        int(*n),
                    ]
                },
            )
        }
        "q13" => {
            let bids = i.bids.map(|b| {
                (
                    b.auction % 10_000,
                    (b.auction, b.bidder, b.price, b.date_time),
                )
            });
            let out = bids.join_map(i.side, |_, &(a, b, p, t), value| {
                (a, b, p, t, value.clone())
            });
            finish(out, probe, |(a, b, p, t, v)| {
                vec![int(*a), int(*b), int(*p), ts(*t), text(v)]
            })
        }
        "q15" => finish(
            day_statistics(i.bids.map(|b| ((), b)), false),
            probe,
            |((), m)| {
                let mut row = vec![date(m[0] as u64)];
                row.extend(m[1..13].iter().map(|x| Value::Int(*x)));
                row
            },
        ),
        "q16" => finish(
            day_statistics(i.bids.map(|b| (b.channel.clone(), b)), true),
            probe,
            |(channel, m)| {
                // m[13]: the latest minute, as the hour * 60 + minute of the day.
                let minute = format!("{:02}:{:02}", m[13] / 60, m[13] % 60);
                let mut row = vec![text(channel), date(m[0] as u64), text(&minute)];
                row.extend(m[1..13].iter().map(|x| Value::Int(*x)));
                row
            },
        ),
        "q17" => {
            let out = i
                .bids
                .map(|b| ((b.auction, b.date_time / DAY * DAY), b.price))
                .reduce(
                    |_, vals: &[(&u64, Diff)], out: &mut Vec<([i64; 8], Diff)>| {
                        let mut m = [0i64; 8];
                        let mut sum: i128 = 0;
                        for (&price, n) in vals {
                            let n = *n as i64;
                            m[0] += n;
                            m[1 + rank(price) as usize] += n;
                            sum += price as i128 * n as i128;
                        }
                        m[4] = *vals[0].0 as i64;
                        m[5] = *vals[vals.len() - 1].0 as i64;
                        m[6] = (sum as f64 / m[0] as f64).to_bits() as i64;
                        m[7] = sum as i64;
                        out.push((m, 1));
                    },
                );
            finish(out, probe, |((auction, day), m)| {
                let mut row = vec![int(*auction), date(*day)];
                row.extend(m[..6].iter().map(|x| Value::Int(*x)));
                row.push(Value::float(f64::from_bits(m[6] as u64)));
                row.push(Value::Int(m[7]));
                row
            })
        }
        "q20" => {
            let auctions = i.auctions.filter(|a| a.category == 10).map(|a| (a.id, a));
            let bids = i.bids.map(|b| (b.auction, b));
            finish(
                bids.join_map(auctions, |_, b, a| (b.clone(), a.clone())),
                probe,
                |(b, a)| {
                    let mut row = vec![
                        int(b.auction),
                        int(b.bidder),
                        int(b.price),
                        text(&b.channel),
                        text(&b.url),
                        ts(b.date_time),
                        text(&b.extra),
                    ];
                    row.extend(auction_values(a));
                    row
                },
            )
        }
        "q22" => finish(
            i.bids.map(|b| {
                let dirs = (
                    split_part(&b.url, '/', 4),
                    split_part(&b.url, '/', 5),
                    split_part(&b.url, '/', 6),
                );
                (b.auction, b.bidder, b.price, b.channel, dirs)
            }),
            probe,
            |(a, b, p, c, (d1, d2, d3))| {
                vec![
                    int(*a),
                    int(*b),
                    int(*p),
                    text(c),
                    text(d1),
                    text(d2),
                    text(d3),
                ]
            },
        ),
        _ => return None,
    })
}

/// q15/q16: per group and day, bids, distinct bidders and distinct auctions, in all and per
/// price rank, and the latest minute of the day. The result's values: `[day, total_bids,
/// rank1..3_bids, total_bidders, rank1..3_bidders, total_auctions, rank1..3_auctions, minute]`.
fn day_statistics<'s, G>(bids: Coll<'s, (G, Bid)>, with_minute: bool) -> Coll<'s, (G, [i64; 14])>
where
    G: ExchangeData + std::hash::Hash,
{
    /// (group, day), price rank, bidder, auction, minute of the day.
    type Ranked<G> = ((G, u64), u8, u64, u64, u64);
    let ranked = bids.map(|(g, b)| {
        let day = b.date_time / DAY * DAY;
        let minute = b.date_time % DAY / 60_000;
        ((g, day), rank(b.price), b.bidder, b.auction, minute)
    });
    // (group, metric index, value): the metrics are combined per group at the end.
    let bids_per_rank = ranked
        .clone()
        .map(|(k, r, _, _, _)| (k, r))
        .count()
        .map(|((k, r), n)| (k, (2 + r, n as i64)));
    let distinct = |column: fn(&Ranked<G>) -> u64, base: u8| {
        let per_rank = ranked
            .clone()
            .map(move |x| (x.0.clone(), x.1, column(&x)))
            .distinct();
        let total = per_rank
            .clone()
            .map(|(k, _, v)| (k, v))
            .distinct()
            .map(|(k, _)| k)
            .count()
            .map(move |(k, n)| (k, (base, n as i64)));
        let ranks = per_rank
            .map(|(k, r, _)| (k, r))
            .count()
            .map(move |((k, r), n)| (k, (base + 1 + r, n as i64)));
        total.concat(ranks)
    };
    let bidders = distinct(|x| x.2, 5);
    let auctions = distinct(|x| x.3, 9);
    let mut metrics = bids_per_rank.concat(bidders).concat(auctions);
    if with_minute {
        let minutes = ranked
            .map(|(k, _, _, _, minute)| (k, minute))
            .reduce(|_, vals: &[(&u64, Diff)], out: &mut Vec<(u64, Diff)>| {
                out.push((*vals[vals.len() - 1].0, 1))
            })
            .map(|(k, m)| (k, (13, m as i64)));
        metrics = metrics.concat(minutes);
    }
    metrics
        .reduce(|(_, day), vals: &[(&(u8, i64), Diff)], out| {
            let mut m = [0i64; 14];
            m[0] = *day as i64;
            for ((i, v), _) in vals {
                m[*i as usize] = *v;
            }
            m[1] = m[2] + m[3] + m[4];
            out.push((m, 1));
        })
        .map(|((g, _), m)| (g, m))
}
