//! freshet as a library: start two workers, define a view, write rows, read it, and follow its
//! changes through a subscription.
//!
//! Run with `cargo run -p freshet-dataflows --example embedded`.

use freshet_dataflows::engine::{Engine, EngineConfig, SubscribeOptions, SubscribeTarget};
use freshet_dataflows::subscribe::SubscribeEvent;
use freshet_dataflows::{Row, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::start(EngineConfig {
        workers: 2,
        ..Default::default()
    })?;
    engine.execute(
        "CREATE TABLE orders (customer text NOT NULL, amount bigint NOT NULL);
         CREATE VIEW totals AS SELECT customer, sum(amount) AS total, count(*) AS n
                               FROM orders GROUP BY customer",
    )?;

    let order = |c: &str, a: i64| Row::new(vec![Value::text(c), Value::Int(a)]);
    engine.write("orders", vec![(order("ada", 10), 1), (order("bob", 5), 1)])?;

    let snapshot = engine.read("totals", None)?;
    println!("as of {}:", snapshot.timestamp);
    for row in &snapshot.rows {
        println!("  {}", row.to_json());
    }

    // Subscribe without a snapshot, then change the input: the subscriber sees each change.
    let sub = engine.subscribe(
        SubscribeTarget::Name("totals".into()),
        SubscribeOptions {
            snapshot: false,
            ..Default::default()
        },
    )?;
    let ts = engine.write("orders", vec![(order("ada", 7), 1)])?;
    loop {
        match sub.recv_blocking()? {
            SubscribeEvent::Update { time, updates } => {
                for (row, diff) in updates {
                    println!("at {time}: {:+} {}", diff, row.to_json());
                }
            }
            SubscribeEvent::Progress { upper } if upper > ts => break,
            SubscribeEvent::Progress { .. } => {}
            SubscribeEvent::Error { message, .. } => return Err(message.into()),
        }
    }
    drop(sub);
    engine.shutdown();
    Ok(())
}
