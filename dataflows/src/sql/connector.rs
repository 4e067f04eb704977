//! `CREATE SOURCE` and `CREATE SINK`, which `sqlparser` does not know.
//!
//! The statements are read from `sqlparser`'s tokens with a small recursive-descent parser;
//! the column list of a source is handed to `sqlparser` as a `CREATE TABLE` so that types and
//! `NOT NULL` mean exactly what they mean for tables.
//!
//! ```sql
//! CREATE SOURCE s [(col type, …)] FROM FILE 'path' FORMAT CSV|JSON [WITH (…)]
//! CREATE SOURCE s [(col type, …)] FROM KAFKA BROKERS 'h:p' TOPIC 't' FORMAT JSON|CSV [WITH (…)]
//! CREATE SOURCE s FROM GENERATOR COUNTER|NEXMARK [(option = value, …)]
//! CREATE SINK k FROM relation INTO KAFKA BROKERS 'h:p' TOPIC 't' FORMAT JSON [WITH (…)]
//! CREATE SINK k FROM relation INTO FILE 'path' FORMAT JSON [WITH (…)]
//! ```

use std::collections::BTreeMap;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::{ident_text, Statement};
use crate::connector::{Format, SinkSpec, SourceSpec, Transport};
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::value::{parse_text, DataType, Value};

/// Options the engine interprets itself rather than passing to the connector.
const ENGINE_OPTIONS: &[&str] = &["event_time", "lateness", "idle_timeout", "bad_records"];

/// A parse failure at a token (line and column within the statement, 1-based).
pub struct ParseFailure {
    pub message: String,
    pub line: u64,
    pub column: u64,
}

type Parsed<T> = std::result::Result<T, Failure>;

/// Either a syntax problem at a place, or a semantic error with no place.
pub enum Failure {
    Syntax(ParseFailure),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

struct Cursor<'a> {
    text: &'a str,
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

/// Parses `CREATE SOURCE …` or `CREATE SINK …`.
pub fn parse(text: &str) -> Parsed<Statement> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            Failure::Syntax(ParseFailure {
                message: e.message.clone(),
                line: e.location.line,
                column: e.location.column,
            })
        })?
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut c = Cursor {
        text,
        tokens,
        pos: 0,
    };
    c.keyword("CREATE")?;
    if c.eat_keyword("SOURCE") {
        source(&mut c)
    } else {
        c.keyword("SINK")?;
        sink(&mut c)
    }
}

fn source(c: &mut Cursor<'_>) -> Parsed<Statement> {
    let if_not_exists = c.if_not_exists()?;
    let name = c.name()?;
    let schema = if matches!(c.peek(), Token::LParen) {
        c.column_list(&name)?
    } else {
        Schema::default()
    };
    c.keyword("FROM")?;
    let transport = if c.eat_keyword("FILE") {
        Transport::File { path: c.string()? }
    } else if c.eat_keyword("KAFKA") {
        let (brokers, topic) = c.kafka()?;
        Transport::Kafka { brokers, topic }
    } else if c.eat_keyword("GENERATOR") {
        Transport::Generator {
            kind: c.name()?.to_ascii_lowercase(),
        }
    } else {
        return Err(c.expected("FILE, KAFKA or GENERATOR"));
    };
    let mut options = BTreeMap::new();
    if matches!(transport, Transport::Generator { .. }) && matches!(c.peek(), Token::LParen) {
        options = c.option_list()?;
    }
    let format = if c.eat_keyword("FORMAT") {
        Some(c.format()?)
    } else {
        None
    };
    if c.eat_keyword("WITH") {
        for (k, v) in c.option_list()? {
            options.insert(k, v);
        }
    }
    c.end()?;
    if !matches!(transport, Transport::Generator { .. }) && format.is_none() {
        return Err(c.expected("FORMAT CSV or FORMAT JSON"));
    }
    if !matches!(transport, Transport::Generator { .. }) && schema.is_empty() {
        return Err(Failure::Other(Error::plan(format!(
            "source \"{name}\" needs a column list: CREATE SOURCE {name} (col type, …) FROM …"
        ))));
    }
    let mut spec = SourceSpec {
        name,
        schema,
        transport,
        format,
        options,
        event_time: None,
        lateness: 0,
        idle_timeout: 1000,
        errors_to_stream: true,
    };
    engine_options(&mut spec)?;
    Ok(Statement::CreateSource {
        spec: Box::new(spec),
        if_not_exists,
    })
}

/// Takes the options the engine interprets out of `spec.options`. `event_time` is checked
/// against the columns later, once a generator has filled them in ([`resolve_event_time`]).
fn engine_options(spec: &mut SourceSpec) -> Parsed<()> {
    if let Some(l) = spec.options.remove("lateness") {
        spec.lateness = millis("lateness", &l)?;
    }
    if let Some(l) = spec.options.remove("idle_timeout") {
        spec.idle_timeout = millis("idle_timeout", &l)?;
    }
    if let Some(b) = spec.options.remove("bad_records") {
        spec.errors_to_stream = match b.to_ascii_lowercase().as_str() {
            "error" => true,
            "skip" => false,
            other => {
                return Err(Failure::Other(Error::plan(format!(
                    "bad_records must be 'error' or 'skip', not '{other}'"
                ))))
            }
        };
    }
    Ok(())
}

/// Resolves the `event_time` option against the source's columns.
pub fn resolve_event_time(spec: &mut SourceSpec) -> Result<()> {
    let Some(col) = spec.options.remove("event_time") else {
        if spec.lateness > 0 {
            return Err(Error::plan("lateness applies only with event_time"));
        }
        return Ok(());
    };
    let i = spec
        .schema
        .index_of(&col)
        .ok_or_else(|| Error::plan(format!("event_time column \"{col}\" does not exist")))?;
    let c = &spec.schema.columns[i];
    if !matches!(c.ty, DataType::Timestamp | DataType::Int) {
        return Err(Error::plan(format!(
            "event_time column \"{}\" must be a timestamp or bigint (milliseconds), not {}",
            c.name, c.ty
        )));
    }
    spec.event_time = Some(i);
    Ok(())
}

/// Options the connector did not claim are errors, not silently ignored.
pub fn check_known_options(options: &BTreeMap<String, String>, known: &[&str]) -> Result<()> {
    for k in options.keys() {
        if !known.contains(&k.as_str()) && !ENGINE_OPTIONS.contains(&k.as_str()) {
            let mut all: Vec<&str> = known.iter().chain(ENGINE_OPTIONS).copied().collect();
            all.sort_unstable();
            return Err(Error::plan(format!(
                "unknown option \"{k}\" (known: {})",
                all.join(", ")
            )));
        }
    }
    Ok(())
}

fn millis(what: &str, text: &str) -> Parsed<u64> {
    if let Ok(ms) = text.trim().parse::<u64>() {
        return Ok(ms);
    }
    match parse_text(text, DataType::Interval) {
        Some(Value::Interval(us)) if us >= 0 => Ok(us as u64 / 1000),
        _ => Err(Failure::Other(Error::plan(format!(
            "{what} must be an interval such as '5 seconds' or milliseconds, not '{text}'"
        )))),
    }
}

fn sink(c: &mut Cursor<'_>) -> Parsed<Statement> {
    let if_not_exists = c.if_not_exists()?;
    let name = c.name()?;
    c.keyword("FROM")?;
    let from = c.name()?;
    c.keyword("INTO")?;
    let transport = if c.eat_keyword("FILE") {
        Transport::File { path: c.string()? }
    } else if c.eat_keyword("KAFKA") {
        let (brokers, topic) = c.kafka()?;
        Transport::Kafka { brokers, topic }
    } else {
        return Err(c.expected("FILE or KAFKA"));
    };
    c.keyword("FORMAT")?;
    let format = c.format()?;
    if format != Format::Json {
        return Err(Failure::Other(Error::unsupported(
            "sinks write FORMAT JSON only",
        )));
    }
    let options = if c.eat_keyword("WITH") {
        c.option_list()?
    } else {
        BTreeMap::new()
    };
    c.end()?;
    Ok(Statement::CreateSink {
        spec: Box::new(SinkSpec {
            name,
            from,
            schema: Schema::default(),
            transport,
            format,
            options,
        }),
        if_not_exists,
    })
}

impl Cursor<'_> {
    fn peek(&self) -> &Token {
        self.tokens
            .get(self.pos)
            .map(|t| &t.token)
            .unwrap_or(&Token::EOF)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn expected(&self, what: &str) -> Failure {
        let (line, column) = match self.tokens.get(self.pos) {
            Some(t) => (t.span.start.line, t.span.start.column),
            None => match self.tokens.last() {
                Some(t) => (t.span.end.line, t.span.end.column),
                None => (1, 1),
            },
        };
        let found = match self.peek() {
            Token::EOF => "end of statement".to_string(),
            t => t.to_string(),
        };
        Failure::Syntax(ParseFailure {
            message: format!("Expected: {what}, found: {found}"),
            line,
            column,
        })
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if let Token::Word(w) = self.peek() {
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw) {
                self.pos += 1;
                return true;
            }
        }
        false
    }

    fn keyword(&mut self, kw: &str) -> Parsed<()> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
    }

    fn if_not_exists(&mut self) -> Parsed<bool> {
        if self.eat_keyword("IF") {
            self.keyword("NOT")?;
            self.keyword("EXISTS")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn name(&mut self) -> Parsed<String> {
        match self.peek().clone() {
            Token::Word(w) => {
                self.pos += 1;
                Ok(ident_text(&w.value, w.quote_style.is_some()))
            }
            _ => Err(self.expected("a name")),
        }
    }

    fn string(&mut self) -> Parsed<String> {
        match self.peek().clone() {
            Token::SingleQuotedString(s) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.expected("a quoted string")),
        }
    }

    fn kafka(&mut self) -> Parsed<(String, String)> {
        self.keyword("BROKERS")?;
        let brokers = self.string()?;
        self.keyword("TOPIC")?;
        let topic = self.string()?;
        Ok((brokers, topic))
    }

    fn format(&mut self) -> Parsed<Format> {
        if self.eat_keyword("CSV") {
            Ok(Format::Csv)
        } else if self.eat_keyword("JSON") {
            Ok(Format::Json)
        } else {
            Err(self.expected("CSV or JSON"))
        }
    }

    fn end(&mut self) -> Parsed<()> {
        while matches!(self.peek(), Token::SemiColon) {
            self.pos += 1;
        }
        if matches!(self.peek(), Token::EOF) {
            Ok(())
        } else {
            Err(self.expected("end of statement"))
        }
    }

    /// `( key = value, … )`; values are strings, numbers, booleans or words.
    fn option_list(&mut self) -> Parsed<BTreeMap<String, String>> {
        if !matches!(self.next(), Token::LParen) {
            self.pos -= 1;
            return Err(self.expected("("));
        }
        let mut out = BTreeMap::new();
        if matches!(self.peek(), Token::RParen) {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            let key = self.name()?.to_ascii_lowercase();
            if !matches!(self.next(), Token::Eq) {
                self.pos -= 1;
                return Err(self.expected("="));
            }
            let value = match self.next() {
                Token::SingleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) => w.value,
                _ => {
                    self.pos -= 1;
                    return Err(self.expected("an option value"));
                }
            };
            if out.insert(key.clone(), value).is_some() {
                return Err(Failure::Other(Error::plan(format!(
                    "option \"{key}\" given twice"
                ))));
            }
            match self.next() {
                Token::Comma => continue,
                Token::RParen => return Ok(out),
                _ => {
                    self.pos -= 1;
                    return Err(self.expected(", or )"));
                }
            }
        }
    }

    /// A parenthesized column list, read by `sqlparser` as the columns of a table.
    fn column_list(&mut self, name: &str) -> Parsed<Schema> {
        let open = self.pos;
        let mut depth = 0usize;
        loop {
            match self.next() {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Token::EOF => {
                    self.pos = open;
                    return Err(self.expected("a closed column list"));
                }
                _ => {}
            }
        }
        let start = offset_of(self.text, &self.tokens[open]);
        let end = offset_of(self.text, &self.tokens[self.pos - 1]) + 1;
        let sql = format!("CREATE TABLE x {}", &self.text[start..end]);
        let stmt = super::parse_statement(
            &sql,
            &super::StatementText {
                text: &sql,
                offset: 0,
            },
        )
        .map_err(|e| match e {
            Error::Syntax { message, .. } => Failure::Other(Error::Syntax {
                message: format!("in the columns of source \"{name}\": {message}"),
                position: None,
            }),
            other => Failure::Other(other),
        })?;
        match stmt {
            Statement::CreateTable {
                schema,
                primary_key,
                ..
            } => {
                if !primary_key.is_empty() {
                    return Err(Failure::Other(Error::unsupported(
                        "PRIMARY KEY on a source",
                    )));
                }
                Ok(schema)
            }
            _ => Err(Failure::Other(Error::Internal(
                "column list did not parse as columns".into(),
            ))),
        }
    }
}

/// Byte offset of a token's start in `text`.
fn offset_of(text: &str, t: &TokenWithSpan) -> usize {
    let mut line = 1;
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == t.span.start.line {
            break;
        }
        line += 1;
        offset += l.len();
    }
    let _ = line;
    let rest = &text[offset..];
    offset
        + rest
            .char_indices()
            .nth(t.span.start.column.saturating_sub(1) as usize)
            .map(|(i, _)| i)
            .unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_spec(sql: &str) -> SourceSpec {
        match parse(sql) {
            Ok(Statement::CreateSource { spec, .. }) => {
                let mut spec = *spec;
                resolve_event_time(&mut spec).unwrap_or_else(|e| panic!("{e}"));
                spec
            }
            Ok(_) => panic!("not a source"),
            Err(Failure::Syntax(p)) => panic!("{} at {}:{}", p.message, p.line, p.column),
            Err(Failure::Other(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn file_source_with_options() {
        let s = source_spec(
            "CREATE SOURCE Bids (id bigint NOT NULL, ts timestamp, \"Price\" double precision)
             FROM FILE '/tmp/bids.csv' FORMAT CSV
             WITH (header = true, event_time = 'ts', lateness = '5 seconds', tail = true)",
        );
        assert_eq!(s.name, "bids");
        assert_eq!(s.schema.columns[2].name, "Price");
        assert!(!s.schema.columns[0].nullable);
        assert_eq!(
            s.transport,
            Transport::File {
                path: "/tmp/bids.csv".into()
            }
        );
        assert_eq!(s.format, Some(Format::Csv));
        assert_eq!(s.event_time, Some(1));
        assert_eq!(s.lateness, 5000);
        assert_eq!(s.option("header"), Some("true"));
        assert_eq!(s.option("tail"), Some("true"));
    }

    #[test]
    fn kafka_and_generator_sources() {
        let s = source_spec(
            "CREATE SOURCE k (a bigint) FROM KAFKA BROKERS 'localhost:9092' TOPIC 't' FORMAT JSON WITH (start = 'earliest')",
        );
        assert_eq!(
            s.transport,
            Transport::Kafka {
                brokers: "localhost:9092".into(),
                topic: "t".into()
            }
        );
        let g = source_spec("CREATE SOURCE n FROM GENERATOR NEXMARK (stream = 'bid', rate = 1000)");
        assert_eq!(
            g.transport,
            Transport::Generator {
                kind: "nexmark".into()
            }
        );
        assert_eq!(g.option("rate"), Some("1000"));
    }

    #[test]
    fn sinks() {
        match parse("CREATE SINK out FROM v INTO KAFKA BROKERS 'b:1' TOPIC 'o' FORMAT JSON") {
            Ok(Statement::CreateSink { spec, .. }) => {
                assert_eq!(spec.from, "v");
                assert_eq!(spec.format, Format::Json);
            }
            _ => panic!("sink did not parse"),
        }
    }

    #[test]
    fn errors_are_positioned_or_named() {
        match parse("CREATE SOURCE s (a bigint) FROM FIEL 'x' FORMAT CSV") {
            Err(Failure::Syntax(p)) => {
                assert!(
                    p.message.contains("FILE, KAFKA or GENERATOR"),
                    "{}",
                    p.message
                );
                assert_eq!((p.line, p.column), (1, 33));
            }
            _ => panic!("expected a syntax error"),
        }
        assert!(matches!(
            parse("CREATE SOURCE s (a bigint) FROM FILE 'x' FORMAT CSV WITH (lateness = 'soon')"),
            Err(Failure::Other(_))
        ));
        assert!(matches!(
            parse("CREATE SOURCE s FROM FILE 'x' FORMAT CSV"),
            Err(Failure::Other(_))
        ));
        let mut spec = match parse(
            "CREATE SOURCE s (a text) FROM FILE 'x' FORMAT CSV WITH (event_time = 'a')",
        ) {
            Ok(Statement::CreateSource { spec, .. }) => *spec,
            _ => panic!("should parse"),
        };
        assert!(resolve_event_time(&mut spec).is_err());
    }
}
