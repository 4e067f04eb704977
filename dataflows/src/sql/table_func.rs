//! Table functions in FROM: `generate_series`.
//!
//! A call in FROM is a `FlatMap` over the FROM items before it (PostgreSQL treats every
//! function in FROM as LATERAL, so its arguments may read those items' columns), or over a
//! single empty row when it comes first. Each row is copied once per value, the value
//! appended, so a retraction of the row retracts its copies.

use sqlparser::ast;

use super::expr::ExprBinder;
use super::query::{rename, scope_of};
use super::scope::Scope;
use crate::error::{Error, Result};
use crate::expr::ScalarExpr;
use crate::plan::{FlatMapPlan, Plan, TableFunc};
use crate::row::Row;
use crate::schema::Column;
use crate::value::{DataType, Value};

/// A function call written as a FROM item.
pub struct Call<'a> {
    pub name: &'a ast::ObjectName,
    pub args: &'a [ast::FunctionArg],
    pub alias: Option<&'a ast::TableAlias>,
    pub with_ordinality: bool,
}

/// The call `tf` holds, if it is one.
pub fn call(tf: &ast::TableFactor) -> Option<Call<'_>> {
    match tf {
        ast::TableFactor::Table {
            name,
            alias,
            args: Some(args),
            with_ordinality,
            ..
        } => Some(Call {
            name,
            args: &args.args,
            alias: alias.as_ref(),
            with_ordinality: *with_ordinality,
        }),
        ast::TableFactor::Function {
            name, args, alias, ..
        } => Some(Call {
            name,
            args,
            alias: alias.as_ref(),
            with_ordinality: false,
        }),
        _ => None,
    }
}

/// `left` (or one empty row) with the rows of `call` per row, its value as a last column.
pub fn plan(call: &Call<'_>, left: Option<(Plan, Scope)>) -> Result<(Plan, Scope)> {
    let name = super::object_name(call.name);
    if name != "generate_series" {
        return Err(Error::unsupported(format!(
            "the table function {name} (generate_series is supported)"
        )));
    }
    if call.with_ordinality {
        return Err(Error::unsupported("WITH ORDINALITY"));
    }
    let (input, scope) = left.unwrap_or_else(|| {
        (
            Plan::Constant {
                rows: vec![(Row::empty(), 1)],
                arity: 0,
            },
            Scope::default(),
        )
    });
    let mut bound = Vec::new();
    for a in call.args {
        let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
            return Err(Error::unsupported(format!("the argument {a} of {name}")));
        };
        if super::expr::contains_aggregate(e) {
            return Err(Error::plan(
                "aggregate functions are not allowed in functions in FROM",
            ));
        }
        bound.push(ExprBinder::new(&scope).bind(e)?);
    }
    let types: Vec<DataType> = bound.iter().map(|(_, t)| t.ty).collect();
    let int = |t: &DataType| matches!(t, DataType::Int | DataType::Null);
    let ty = match types.as_slice() {
        [a, b] | [a, b, _] if int(a) && int(b) && types.get(2).is_none_or(int) => DataType::Int,
        [DataType::Timestamp, DataType::Timestamp, DataType::Interval | DataType::Null] => {
            DataType::Timestamp
        }
        _ => {
            let shown: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            return Err(Error::plan(format!(
                "function generate_series({}) does not exist",
                shown.join(", ")
            )));
        }
    };
    let mut exprs = bound.into_iter().map(|(e, _)| e);
    let (start, stop) = (exprs.next(), exprs.next());
    let func = TableFunc::GenerateSeries {
        start: start.expect("two arguments"),
        stop: stop.expect("two arguments"),
        step: exprs.next().unwrap_or(ScalarExpr::Literal(Value::Int(1))),
    };
    // PostgreSQL names the column for the function, or for the alias when it gives no column
    // names.
    let binding = call.alias.map_or(name.clone(), |a| super::ident(&a.name));
    if scope.has_table(&binding) {
        return Err(Error::plan(format!(
            "table name \"{binding}\" specified more than once"
        )));
    }
    let mut cols = vec![Column::new(binding.clone(), ty, false)];
    if let Some(a) = call.alias {
        rename(&mut cols, &a.columns)?;
    }
    let plan = Plan::FlatMap(FlatMapPlan {
        input: Box::new(input),
        func,
    });
    Ok((plan, scope.join(&scope_of(Some(&binding), &cols))))
}
