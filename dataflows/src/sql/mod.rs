//! The SQL front end: split a request into statements, parse each with `sqlparser`
//! (PostgreSQL dialect), and plan queries into [`crate::plan::Plan`]s.
//!
//! Statements are split here rather than by the parser so that each one is parsed on its own:
//! a syntax error in the third statement must not stop the first two from running, and its
//! position must be reported in terms of the whole request.

pub mod connector;
pub mod expr;
mod grouped_windows;
mod grouping_sets;
pub mod query;
pub mod ranking;
pub mod scope;
pub mod subquery;
mod table_func;
pub mod temporal;
pub mod types;
pub mod window;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::error::{Error, Position, Result};
use crate::schema::{Column, Schema};

pub use query::{Finishing, QueryPlan, QueryPlanner, Resolver};

/// The kinds of catalog item a DROP names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Table,
    View,
    Source,
    Sink,
    Index,
}

impl ItemKind {
    pub fn name(&self) -> &'static str {
        match self {
            ItemKind::Table => "table",
            ItemKind::View => "view",
            ItemKind::Source => "source",
            ItemKind::Sink => "sink",
            ItemKind::Index => "index",
        }
    }
}

/// `INSERT … ON CONFLICT [(columns)] DO NOTHING | DO UPDATE SET … [WHERE …]`: what to do with
/// a row whose primary key is taken.
#[derive(Debug, Clone)]
pub struct OnConflict {
    /// The conflict target's columns as written (empty: any key).
    pub target: Vec<String>,
    /// `DO UPDATE`; `None` for `DO NOTHING`.
    pub update: Option<ConflictUpdate>,
}

/// `DO UPDATE SET … [WHERE …]`, over the table's columns and `excluded.*` (the row that was to
/// be inserted).
#[derive(Debug, Clone)]
pub struct ConflictUpdate {
    pub sets: Vec<(String, ast::Expr)>,
    pub condition: Option<ast::Expr>,
}

/// `SET col = expr, …` as (column name, expression) pairs.
fn assignments(list: Vec<ast::Assignment>) -> Result<Vec<(String, ast::Expr)>> {
    list.into_iter()
        .map(|a| match a.target {
            ast::AssignmentTarget::ColumnName(c) => Ok((object_name(&c), a.value)),
            ast::AssignmentTarget::Tuple(_) => Err(Error::unsupported("tuple assignment")),
        })
        .collect()
}

impl OnConflict {
    fn of(c: ast::OnConflict) -> Result<OnConflict> {
        let target = match c.conflict_target {
            None => Vec::new(),
            Some(ast::ConflictTarget::Columns {
                columns,
                predicate: None,
            }) => columns.iter().map(ident).collect(),
            Some(other) => return Err(Error::unsupported(format!("ON CONFLICT {other}"))),
        };
        let update = match c.action {
            ast::OnConflictAction::DoNothing => None,
            ast::OnConflictAction::DoUpdate(u) => {
                if target.is_empty() {
                    return Err(Error::plan(
                        "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                    ));
                }
                Some(ConflictUpdate {
                    sets: assignments(u.assignments)?,
                    condition: u.selection,
                })
            }
        };
        Ok(OnConflict { target, update })
    }
}

/// The rows an UPDATE or DELETE changes: those of `table` (named `alias` in the statement, if
/// given) that `selection` holds for, over the table joined with `from` (UPDATE's FROM,
/// DELETE's USING).
#[derive(Clone, Debug)]
pub struct WriteTarget {
    pub table: String,
    pub alias: Option<String>,
    pub from: Vec<ast::TableWithJoins>,
    pub selection: Option<ast::Expr>,
}

impl WriteTarget {
    fn of(
        relation: &ast::TableFactor,
        what: &str,
        from: Vec<ast::TableWithJoins>,
        selection: Option<ast::Expr>,
    ) -> Result<WriteTarget> {
        let ast::TableFactor::Table { name, alias, .. } = relation else {
            return Err(Error::unsupported(format!("{what} of a subquery")));
        };
        if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return Err(Error::unsupported(format!(
                "column aliases on the table of {what}"
            )));
        }
        Ok(WriteTarget {
            table: object_name(name),
            alias: alias.as_ref().map(|a| ident(&a.name)),
            from,
            selection,
        })
    }

    /// The name the statement refers to the table by.
    pub fn binding(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.table)
    }
}

/// A parsed statement.
#[derive(Clone, Debug)]
pub enum Statement {
    CreateTable {
        name: String,
        schema: Schema,
        primary_key: Vec<usize>,
        if_not_exists: bool,
    },
    CreateView {
        name: String,
        query: Box<ast::Query>,
        columns: Vec<String>,
        if_not_exists: bool,
        or_replace: bool,
    },
    Insert {
        table: String,
        columns: Vec<String>,
        source: Box<ast::Query>,
        on_conflict: Option<OnConflict>,
        returning: Option<Vec<ast::SelectItem>>,
    },
    Delete {
        target: WriteTarget,
        returning: Option<Vec<ast::SelectItem>>,
    },
    Update {
        target: WriteTarget,
        assignments: Vec<(String, ast::Expr)>,
        returning: Option<Vec<ast::SelectItem>>,
    },
    Drop {
        kind: ItemKind,
        names: Vec<String>,
        if_exists: bool,
        cascade: bool,
    },
    Select {
        query: Box<ast::Query>,
        as_of: Option<u64>,
    },
    Explain {
        query: Box<ast::Query>,
    },
    Show(ItemKind),
    CreateSource {
        spec: Box<crate::connector::SourceSpec>,
        if_not_exists: bool,
    },
    CreateSink {
        spec: Box<crate::connector::SinkSpec>,
        if_not_exists: bool,
    },
    /// `CREATE INDEX [name] ON item (columns)`: the item's rows arranged by those columns.
    CreateIndex {
        name: Option<String>,
        on: String,
        columns: Vec<String>,
        if_not_exists: bool,
    },
}

/// One statement of a request, with where it starts.
#[derive(Clone, Debug)]
pub struct StatementText<'a> {
    pub text: &'a str,
    /// Byte offset of `text` in the request.
    pub offset: usize,
}

/// Splits `sql` at top-level semicolons, honouring quotes and comments. Empty statements are
/// dropped.
pub fn split_statements<'a>(sql: &'a str) -> Vec<StatementText<'a>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let push = |out: &mut Vec<StatementText<'a>>, from: usize, to: usize| {
        let piece = &sql[from..to];
        let trimmed = piece.trim_start();
        let lead = piece.len() - trimmed.len();
        if !strip_comments(trimmed).trim().is_empty() {
            out.push(StatementText {
                text: trimmed.trim_end(),
                offset: from + lead,
            });
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        if i + 1 < bytes.len() && bytes[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b';' => {
                push(&mut out, start, i);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < sql.len() {
        push(&mut out, start, sql.len());
    }
    out
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-based line and column of byte `offset` in `text`.
pub fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0) as u64
        + 1;
    Position { line, column }
}

/// Converts a parser error into a syntax error positioned in the whole request.
fn syntax_error(
    e: sqlparser::parser::ParserError,
    request: &str,
    stmt: &StatementText<'_>,
) -> Error {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("sql parser error: ")
        .unwrap_or(&msg)
        .to_string();
    // sqlparser reports "… at Line: L, Column: C" relative to the statement.
    let mut position = None;
    let mut message = msg.clone();
    if let Some(idx) = msg.rfind(" at Line: ") {
        let tail = &msg[idx + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        if let (Some(l), Some(c)) = (parts.next(), parts.next()) {
            if let (Ok(l), Ok(c)) = (l.trim().parse::<u64>(), c.trim().parse::<u64>()) {
                let start = position_of(request, stmt.offset);
                let line = start.line + l - 1;
                let column = if l == 1 { start.column + c - 1 } else { c };
                position = Some(Position { line, column });
                message = msg[..idx].to_string();
            }
        }
    }
    if position.is_none() {
        position = Some(position_of(request, stmt.offset));
    }
    Error::Syntax { message, position }
}

/// Parses one statement (`stmt` is a piece of `request`, used for error positions).
pub fn parse_statement(request: &str, stmt: &StatementText<'_>) -> Result<Statement> {
    let (text, as_of) = strip_as_of(stmt.text)?;
    let upper = text.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().take(3).collect();
    match words.as_slice() {
        ["SHOW", "SOURCES", ..] => return Ok(Statement::Show(ItemKind::Source)),
        ["SHOW", "SINKS", ..] => return Ok(Statement::Show(ItemKind::Sink)),
        ["SHOW", "VIEWS", ..] | ["SHOW", "MATERIALIZED", "VIEWS"] => {
            return Ok(Statement::Show(ItemKind::View))
        }
        ["SHOW", "TABLES", ..] => return Ok(Statement::Show(ItemKind::Table)),
        ["SHOW", "INDEXES" | "INDEX", ..] => return Ok(Statement::Show(ItemKind::Index)),
        ["CREATE", "SOURCE", ..] | ["CREATE", "SINK", ..] => {
            if as_of.is_some() {
                return Err(Error::plan("AS OF applies to SELECT only"));
            }
            return connector::parse(text).map_err(|f| match f {
                connector::Failure::Syntax(p) => syntax_error(
                    sqlparser::parser::ParserError::ParserError(format!(
                        "{} at Line: {}, Column: {}",
                        p.message, p.line, p.column
                    )),
                    request,
                    stmt,
                ),
                connector::Failure::Other(e) => e,
            });
        }
        ["DROP", "SOURCE" | "SINK", ..] => {
            // sqlparser has no DROP SOURCE/SINK: parse as DROP TABLE/VIEW (same length, so
            // error positions stay right) and restore the kind.
            let (kind, stand_in) = if words[1] == "SOURCE" {
                (ItemKind::Source, "TABLE ")
            } else {
                (ItemKind::Sink, "VIEW")
            };
            let at = upper.find(words[1]).expect("word present");
            let rewritten = format!(
                "{}{}{}",
                &text[..at],
                stand_in,
                &text[at + words[1].len()..]
            );
            let inner = StatementText {
                text: &rewritten,
                offset: stmt.offset,
            };
            let shifted = format!("{}{}", &request[..stmt.offset], rewritten);
            return match parse_statement(&shifted, &inner)? {
                Statement::Drop {
                    names,
                    if_exists,
                    cascade,
                    ..
                } => Ok(Statement::Drop {
                    kind,
                    names,
                    if_exists,
                    cascade,
                }),
                _ => Err(Error::Internal("DROP did not parse as DROP".into())),
            };
        }
        _ => {}
    }
    let dialect = PostgreSqlDialect {};
    check_size(&dialect, text)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(64)
        .try_with_sql(text)
        .map_err(|e| syntax_error(e, request, stmt))?;
    let parsed = parser
        .parse_statement()
        .map_err(|e| syntax_error(e, request, stmt))?;
    // Anything after the statement (other than a semicolon) is an error.
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        let t = parser.peek_token();
        return Err(syntax_error(
            sqlparser::parser::ParserError::ParserError(format!(
                "Expected: end of statement, found: {} at Line: {}, Column: {}",
                t.token, t.span.start.line, t.span.start.column
            )),
            request,
            stmt,
        ));
    }
    convert(parsed, as_of)
}

/// Most operators one statement may hold. Chains like `a + b + …` nest one level per operator,
/// and planning walks that nesting recursively; this bound keeps it far from the stack limit.
pub const MAX_OPERATORS: usize = 2_000;

fn check_size(dialect: &PostgreSqlDialect, text: &str) -> Result<()> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    // Tokenizing errors are reported by the parser with a position; only count here.
    let Ok(tokens) = Tokenizer::new(dialect, text).tokenize() else {
        return Ok(());
    };
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::LParen => true,
            Token::Word(w) => matches!(w.value.to_ascii_uppercase().as_str(), "AND" | "OR" | "NOT"),
            _ => false,
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(Error::plan(format!(
            "statement too complex: {operators} operators and parentheses (at most {MAX_OPERATORS})"
        )));
    }
    Ok(())
}

/// Removes a trailing `AS OF <timestamp>` from a SELECT.
fn strip_as_of(text: &str) -> Result<(&str, Option<u64>)> {
    let trimmed = text.trim_end();
    let upper = trimmed.to_ascii_uppercase();
    if let Some(idx) = upper.rfind("AS OF") {
        let tail = trimmed[idx + 5..].trim();
        let before = &trimmed[..idx];
        let boundary_ok = before.ends_with(|c: char| c.is_whitespace() || c == ')');
        if boundary_ok && !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit()) {
            let ts = tail
                .parse::<u64>()
                .map_err(|_| Error::plan("AS OF timestamp out of range"))?;
            return Ok((before.trim_end(), Some(ts)));
        }
    }
    Ok((text, None))
}

/// A select item's expression (`None` for wildcards).
pub(crate) fn item_expr(item: &ast::SelectItem) -> Option<&ast::Expr> {
    match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// The name an identifier denotes, as PostgreSQL has it: unquoted names fold to lower case,
/// quoted ones are kept exactly.
pub(crate) fn ident(id: &ast::Ident) -> String {
    ident_text(&id.value, id.quote_style.is_some())
}

/// [`ident`] for an identifier's text and whether it was quoted.
pub(crate) fn ident_text(value: &str, quoted: bool) -> String {
    if quoted {
        value.to_string()
    } else {
        value.to_lowercase()
    }
}

/// The name an object is known by: its last part, as [`ident`] has it.
pub(crate) fn object_name(n: &ast::ObjectName) -> String {
    match n.0.last() {
        Some(ast::ObjectNamePart::Identifier(id)) => ident(id),
        _ => n.to_string().to_lowercase(),
    }
}

fn convert(s: ast::Statement, as_of: Option<u64>) -> Result<Statement> {
    if as_of.is_some() && !matches!(s, ast::Statement::Query(_)) {
        return Err(Error::plan("AS OF applies to SELECT only"));
    }
    Ok(match s {
        ast::Statement::Query(q) => Statement::Select { query: q, as_of },
        ast::Statement::CreateTable(ct) => {
            if ct.query.is_some() || ct.like.is_some() {
                return Err(Error::unsupported("CREATE TABLE AS / LIKE"));
            }
            let mut columns = Vec::new();
            let mut primary_key = Vec::new();
            for (i, c) in ct.columns.iter().enumerate() {
                let (ty, numeric) = types::column_type(&c.data_type)?;
                let mut nullable = true;
                for o in &c.options {
                    let o = o.option.to_string().to_ascii_uppercase();
                    if o == "NOT NULL" {
                        nullable = false;
                    } else if o.starts_with("PRIMARY KEY") {
                        nullable = false;
                        primary_key.push(i);
                    } else if o == "NULL" {
                    } else {
                        return Err(Error::unsupported(format!("column option {o}")));
                    }
                }
                let name = ident(&c.name);
                if columns.iter().any(|x: &Column| x.name == name) {
                    return Err(Error::plan(format!(
                        "column \"{name}\" specified more than once"
                    )));
                }
                columns.push(Column {
                    numeric,
                    ..Column::new(name, ty, nullable)
                });
            }
            let schema = Schema::new(columns);
            for constraint in &ct.constraints {
                match constraint {
                    ast::TableConstraint::PrimaryKey(pk) => {
                        for c in &pk.columns {
                            let n = match &c.column.expr {
                                ast::Expr::Identifier(id) => ident(id),
                                other => other.to_string(),
                            };
                            let i = schema.index_of(&n).ok_or_else(|| {
                                Error::plan(format!("column \"{n}\" named in key does not exist"))
                            })?;
                            if !primary_key.contains(&i) {
                                primary_key.push(i);
                            }
                        }
                    }
                    other => return Err(Error::unsupported(format!("table constraint {other}"))),
                }
            }
            let mut schema = schema;
            for i in &primary_key {
                schema.columns[*i].nullable = false;
            }
            if schema.is_empty() {
                return Err(Error::plan("a table needs at least one column"));
            }
            Statement::CreateTable {
                name: object_name(&ct.name),
                schema,
                primary_key,
                if_not_exists: ct.if_not_exists,
            }
        }
        ast::Statement::CreateIndex(ci) => create_index(ci)?,
        ast::Statement::CreateView(cv) => Statement::CreateView {
            name: object_name(&cv.name),
            query: cv.query,
            columns: cv.columns.iter().map(|c| ident(&c.name)).collect(),
            if_not_exists: cv.if_not_exists,
            or_replace: cv.or_replace,
        },
        ast::Statement::Insert(ins) => {
            let table = match &ins.table {
                ast::TableObject::TableName(n) => object_name(n),
                _ => return Err(Error::unsupported("INSERT into a table function")),
            };
            let on_conflict = match ins.on {
                None => None,
                Some(ast::OnInsert::OnConflict(c)) => Some(OnConflict::of(c)?),
                Some(other) => return Err(Error::unsupported(format!("INSERT …{other}"))),
            };
            let source = ins
                .source
                .ok_or_else(|| Error::unsupported("INSERT without VALUES or SELECT"))?;
            Statement::Insert {
                table,
                columns: ins.columns.iter().map(object_name).collect(),
                source,
                on_conflict,
                returning: ins.returning,
            }
        }
        ast::Statement::Delete(d) => {
            if d.limit.is_some() || !d.order_by.is_empty() {
                return Err(Error::unsupported("DELETE … ORDER BY / LIMIT"));
            }
            let from = match &d.from {
                ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
            };
            let [twj] = from.as_slice() else {
                return Err(Error::unsupported("DELETE from several tables"));
            };
            if !twj.joins.is_empty() {
                return Err(Error::unsupported("DELETE from a join (use USING)"));
            }
            let using = d.using.unwrap_or_default();
            Statement::Delete {
                target: WriteTarget::of(&twj.relation, "DELETE", using, d.selection)?,
                returning: d.returning,
            }
        }
        ast::Statement::Update(u) => {
            if u.limit.is_some() || !u.order_by.is_empty() {
                return Err(Error::unsupported("UPDATE … ORDER BY / LIMIT"));
            }
            if !u.table.joins.is_empty() {
                return Err(Error::unsupported("UPDATE of a join (use FROM)"));
            }
            let from = match u.from {
                None => vec![],
                Some(ast::UpdateTableFromKind::AfterSet(f)) => f,
                Some(ast::UpdateTableFromKind::BeforeSet(_)) => {
                    return Err(Error::unsupported("UPDATE FROM … before SET"))
                }
            };
            let assignments = assignments(u.assignments)?;
            Statement::Update {
                target: WriteTarget::of(&u.table.relation, "UPDATE", from, u.selection)?,
                assignments,
                returning: u.returning,
            }
        }
        ast::Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            let kind = match object_type {
                ast::ObjectType::Table => ItemKind::Table,
                ast::ObjectType::View | ast::ObjectType::MaterializedView => ItemKind::View,
                ast::ObjectType::Index => ItemKind::Index,
                other => return Err(Error::unsupported(format!("DROP {other}"))),
            };
            Statement::Drop {
                kind,
                names: names.iter().map(object_name).collect(),
                if_exists,
                cascade,
            }
        }
        ast::Statement::Explain {
            statement, analyze, ..
        } => {
            if analyze {
                return Err(Error::unsupported("EXPLAIN ANALYZE"));
            }
            match *statement {
                ast::Statement::Query(q) => Statement::Explain { query: q },
                ast::Statement::CreateView(cv) => Statement::Explain { query: cv.query },
                other => {
                    return Err(Error::unsupported(format!(
                        "EXPLAIN {}",
                        other.to_string().split_whitespace().next().unwrap_or("")
                    )))
                }
            }
        }
        ast::Statement::ShowTables { .. } => Statement::Show(ItemKind::Table),
        ast::Statement::ShowViews { .. } => Statement::Show(ItemKind::View),
        other => {
            let text = other.to_string();
            let head: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(Error::unsupported(format!(
                "the statement {}",
                head.join(" ")
            )));
        }
    })
}

/// `CREATE INDEX`: plain columns only; what freshet cannot honour is refused by name.
fn create_index(ci: ast::CreateIndex) -> Result<Statement> {
    if ci.unique {
        return Err(Error::unsupported(
            "UNIQUE indexes (declare a PRIMARY KEY on the table instead)",
        ));
    }
    if ci.predicate.is_some() {
        return Err(Error::unsupported("partial indexes (CREATE INDEX … WHERE)"));
    }
    if !ci.include.is_empty() {
        return Err(Error::unsupported("CREATE INDEX … INCLUDE"));
    }
    if ci.concurrently || ci.r#async {
        return Err(Error::unsupported("CREATE INDEX CONCURRENTLY"));
    }
    if ci.using.is_some() || !ci.with.is_empty() || !ci.index_options.is_empty() {
        return Err(Error::unsupported(
            "index methods and options (every index is an arrangement)",
        ));
    }
    let mut columns = Vec::new();
    for c in &ci.columns {
        let o = &c.column.options;
        if o.sort.is_some() || o.nulls_first.is_some() || c.operator_class.is_some() {
            return Err(Error::unsupported(
                "ordering options and operator classes in CREATE INDEX",
            ));
        }
        match &c.column.expr {
            ast::Expr::Identifier(id) => columns.push(ident(id)),
            other => {
                return Err(Error::unsupported(format!(
                    "indexes on expressions ({other}): index columns by name"
                )))
            }
        }
    }
    if columns.is_empty() {
        return Err(Error::plan("an index needs at least one column"));
    }
    Ok(Statement::CreateIndex {
        name: ci.name.as_ref().map(object_name),
        on: object_name(&ci.table_name),
        columns,
        if_not_exists: ci.if_not_exists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "select ';' ; -- a; comment\n select 2;; /* x; */ select \"a;b\" from t";
        let parts: Vec<&str> = split_statements(sql).iter().map(|s| s.text).collect();
        assert_eq!(
            parts,
            vec![
                "select ';'",
                "-- a; comment\n select 2",
                "/* x; */ select \"a;b\" from t"
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_request_positions() {
        let sql = "select 1;\nselect * fro t";
        let stmts = split_statements(sql);
        let err = parse_statement(sql, &stmts[1]).unwrap_err();
        match err {
            Error::Syntax {
                position: Some(p), ..
            } => assert_eq!(p.line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn as_of_is_recognised() {
        let sql = "select * from t as of 1234";
        let stmts = split_statements(sql);
        match parse_statement(sql, &stmts[0]).unwrap() {
            Statement::Select { as_of, .. } => assert_eq!(as_of, Some(1234)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
