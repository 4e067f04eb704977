//! `GET /v1/ws`: several subscriptions over one WebSocket, spoken by a minimal client written
//! here (handshake, masked text frames out, text frames in), against the real server.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;
use serde_json::{json, Value};

struct Ws {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Ws {
    fn connect(addr: &str) -> Ws {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        write!(
            writer,
            "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("handshake");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.contains(" 101 "), "handshake answered {status:?}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
        }
        Ws { reader, writer }
    }

    fn send(&mut self, msg: Value) {
        let payload = msg.to_string().into_bytes();
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81u8];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame).expect("send frame");
    }

    /// The next text message (control frames skipped).
    fn recv(&mut self) -> Value {
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head).expect("frame header");
            let opcode = head[0] & 0x0f;
            let mut len = (head[1] & 0x7f) as u64;
            if len == 126 {
                let mut b = [0u8; 2];
                self.reader.read_exact(&mut b).expect("length");
                len = u16::from_be_bytes(b) as u64;
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.reader.read_exact(&mut b).expect("length");
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.reader.read_exact(&mut payload).expect("payload");
            match opcode {
                1 => return serde_json::from_slice(&payload).expect("JSON message"),
                8 => panic!("server closed the socket"),
                _ => {}
            }
        }
    }

    /// Messages until one matches `done`; returns all of them.
    fn recv_until(&mut self, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let m = self.recv();
            let stop = done(&m);
            out.push(m);
            if stop {
                return out;
            }
        }
    }
}

fn apply(state: &mut BTreeMap<String, i64>, msg: &Value) {
    for u in msg["updates"].as_array().into_iter().flatten() {
        let n = state.entry(u["row"].to_string()).or_default();
        *n += u["diff"].as_i64().expect("diff");
        if *n == 0 {
            state.remove(&u["row"].to_string());
        }
    }
}

#[test]
fn several_subscriptions_share_one_socket() {
    let server = Server::start(&["--workers", "2"]);
    server.sql_ok("CREATE TABLE t (x bigint NOT NULL); CREATE VIEW c AS SELECT count(*) AS n, sum(x) AS s FROM t");
    let mut ws = Ws::connect(&server.addr);
    ws.send(json!({"op": "subscribe", "id": "a", "view": "c"}));
    ws.send(json!({"op": "subscribe", "id": "b", "sql": "SELECT x FROM t WHERE x > 1"}));
    ws.send(json!({"op": "subscribe", "id": "z", "view": "nope"}));
    ws.send(json!({"op": "dance", "id": "q"}));

    // Each subscription: columns, snapshot, progress; the bad ones: errors naming their id.
    let mut progressed = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut states: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    while progressed.len() < 2 || errors.len() < 2 {
        let m = ws.recv();
        let id = m["id"]
            .as_str()
            .expect("every message names its subscription")
            .to_string();
        match m["type"].as_str() {
            Some("columns") => assert!(m["columns"].is_array()),
            Some("update") => apply(states.entry(id).or_default(), &m),
            Some("progress") => {
                progressed.insert(id, m["time"].as_u64().expect("time"));
            }
            Some("error") => {
                errors.insert(id, m["code"].as_str().expect("code").to_string());
            }
            other => panic!("unexpected message {other:?}: {m}"),
        }
    }
    assert_eq!(errors.get("z").map(String::as_str), Some("not_found"));
    assert_eq!(errors.get("q").map(String::as_str), Some("bad_request"));
    assert_eq!(
        states
            .get("a")
            .map(|s| s.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["[0,null]".to_string()])
    );

    // A write reaches both subscriptions; each stays equal to a fresh read.
    let ts = server.ingest_ok("t", "{\"x\": 1}\n{\"x\": 2}\n{\"x\": 3}\n");
    let mut seen = BTreeMap::new();
    ws.recv_until(|m| {
        let id = m["id"].as_str().unwrap_or("").to_string();
        if m["type"] == "update" {
            apply(states.entry(id.clone()).or_default(), m);
        }
        if m["type"] == "progress" && m["time"].as_u64().unwrap_or(0) > ts {
            seen.insert(id, ());
        }
        seen.len() == 2
    });
    let expect = |rows: &Value| -> BTreeMap<String, i64> {
        let mut m = BTreeMap::new();
        for r in rows.as_array().expect("rows") {
            *m.entry(r.to_string()).or_default() += 1;
        }
        m
    };
    assert_eq!(states["a"], expect(&server.read("c")["rows"]));
    assert_eq!(states["b"], expect(&json!([[2], [3]])));

    // After unsubscribing `a`, only `b` hears about later writes.
    ws.send(json!({"op": "unsubscribe", "id": "a"}));
    std::thread::sleep(Duration::from_millis(200));
    let ts = server.ingest_ok("t", "{\"x\": 10}\n");
    let msgs = ws.recv_until(|m| {
        m["id"] == "b" && m["type"] == "progress" && m["time"].as_u64().unwrap_or(0) > ts
    });
    let late_a: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["id"] == "a" && m["type"] == "update")
        .collect();
    assert!(
        late_a.is_empty(),
        "unsubscribed stream still sent {late_a:?}"
    );
    assert!(msgs
        .iter()
        .any(|m| m["id"] == "b" && m["type"] == "update" && m["updates"][0]["row"] == json!([10])));
    server.assert_healthy();
}
