//! Window functions in the select list of a non-aggregating SELECT: rankings
//! (`ROW_NUMBER()`, `RANK()`, `DENSE_RANK()`), `LAG` and `LEAD`, and the functions of a frame
//! (`FIRST_VALUE`, `LAST_VALUE`, `NTH_VALUE` and the aggregates `count`, `sum`, `avg`, `min`,
//! `max`) `OVER ([PARTITION BY …] [ORDER BY …] [frame])`.
//!
//! Each distinct call becomes a stage (`Plan::TopK` with a `rank`) over the rows of the FROM
//! and WHERE clauses: it groups them by the partition expressions, orders each group and
//! appends the function's value as a column, which the select list then reads. The usual
//! ranking is "top k per group" — `SELECT … FROM (SELECT …, ROW_NUMBER() OVER (…) AS rn FROM
//! t) WHERE rn <= k` — and lowering turns that outer filter into the stage's limit, so each
//! group keeps only its k rows (`plan::lower`). Each group is recomputed when it changes,
//! which is cheap for the modest groups such queries have.
//!
//! Frames follow PostgreSQL: `ROWS`, `RANGE` (without offsets) and `GROUPS`, bounds
//! `UNBOUNDED PRECEDING`, `n PRECEDING`, `CURRENT ROW`, `n FOLLOWING`, `UNBOUNDED FOLLOWING`,
//! the same checks and messages, and the default frame (the partition's start to the current
//! row's last peer). Rankings, `LAG` and `LEAD` ignore the frame, as there.

use sqlparser::ast::{self, Expr};

use super::expr::{function_name, is_aggregate_name, visit_functions, ExprBinder};
use super::scope::{Scope, ScopeColumn};
use super::types::{coerce, common_type};
use crate::error::{Error, Result};
use crate::expr::{ColumnType, ScalarExpr};
use crate::plan::reduce::AggFunc;
use crate::plan::top_k::{Frame, FrameBound, FrameFunc, FrameUnits, RankKind, TopKPlan};
use crate::plan::Plan;
use crate::value::{DataType, Value};

/// A window function call, the column that holds its value, and that column's type.
pub type WindowColumn = (ast::Function, usize, ColumnType);

/// Every window function call in `exprs` (not looking into subqueries), each once.
pub fn calls<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> Vec<ast::Function> {
    let mut found: Vec<ast::Function> = Vec::new();
    for e in exprs {
        visit_functions(e, &mut |f| {
            if f.over.is_some() && !found.contains(f) {
                found.push(f.clone());
            }
        });
    }
    found
}

/// Adds a ranking stage for each call over `plan`; returns the plan and, per call, the column
/// that holds its rank. `scope` grows by the (hidden) columns the stages append.
pub fn plan(
    mut plan: Plan,
    scope: &mut Scope,
    calls: Vec<ast::Function>,
) -> Result<(Plan, Vec<WindowColumn>)> {
    let mut columns = Vec::with_capacity(calls.len());
    for f in calls {
        let name = function_name(&f.name);
        let args: Vec<&Expr> = match &f.args {
            ast::FunctionArguments::None => vec![],
            ast::FunctionArguments::List(l) => l
                .args
                .iter()
                .filter_map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(Ok(e)),
                    // `count(*)`: the aggregate's binder reads the call itself.
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)
                        if is_aggregate_name(&name) =>
                    {
                        None
                    }
                    _ => Some(Err(Error::plan(format!("{name}() takes plain arguments")))),
                })
                .collect::<Result<_>>()?,
            ast::FunctionArguments::Subquery(_) => {
                return Err(Error::plan(format!("{name}() takes no subquery")))
            }
        };
        let ranking = match name.as_str() {
            "row_number" => Some(RankKind::RowNumber),
            "rank" => Some(RankKind::Rank),
            "dense_rank" => Some(RankKind::DenseRank),
            "percent_rank" => Some(RankKind::PercentRank),
            "cume_dist" => Some(RankKind::CumeDist),
            "ntile" => {
                let [n] = args.as_slice() else {
                    return Err(Error::plan("ntile(buckets) takes one argument"));
                };
                match ExprBinder::new(scope).bind(n)? {
                    (ScalarExpr::Literal(Value::Int(n)), _) if n > 0 => {
                        Some(RankKind::Ntile(n as u64))
                    }
                    (ScalarExpr::Literal(Value::Int(_)), _) => {
                        return Err(Error::plan("argument of ntile must be greater than zero"))
                    }
                    _ => {
                        return Err(Error::unsupported(
                            "ntile() with buckets other than an integer constant",
                        ))
                    }
                }
            }
            "lag" | "lead" | "first_value" | "last_value" | "nth_value" | "count" | "sum"
            | "avg" | "min" | "max" | "bool_and" | "every" | "bool_or" | "string_agg" => None,
            _ => {
                return Err(Error::Unsupported(format!(
                    "window function {name}(…) OVER is not supported (row_number, rank, \
                     dense_rank, percent_rank, cume_dist, ntile, lag, lead, first_value, \
                     last_value, nth_value and the aggregates count, sum, avg, min, max, \
                     bool_and, bool_or, every and string_agg are)"
                )))
            }
        };
        let aggregate = is_aggregate_name(&name);
        if ranking.is_some() && name != "ntile" && !args.is_empty() {
            return Err(Error::plan(format!("{name}() takes no arguments")));
        }
        let arity = match name.as_str() {
            "first_value" | "last_value" => Some(1..=1),
            "nth_value" => Some(2..=2),
            "lag" | "lead" => Some(1..=3),
            _ => None,
        };
        if let Some(arity) = arity.filter(|a| !a.contains(&args.len())) {
            return Err(Error::plan(match arity.end() {
                1 => format!("{name}(value) takes one argument"),
                2 => format!("{name}(value, n) takes two arguments"),
                _ => format!("{name}(value [, offset [, default]]) takes one to three arguments"),
            }));
        }
        if !f.within_group.is_empty() || (f.filter.is_some() && !aggregate) {
            return Err(Error::unsupported(format!(
                "FILTER or WITHIN GROUP on {name}()"
            )));
        }
        let spec = match &f.over {
            Some(ast::WindowType::WindowSpec(spec)) => spec,
            Some(ast::WindowType::NamedWindow(w)) => {
                return Err(Error::unsupported(format!("named window {w}")))
            }
            None => unreachable!("only calls with OVER are collected"),
        };
        if spec.window_name.is_some() {
            return Err(Error::unsupported(format!(
                "a base window in {name}() OVER (…)"
            )));
        }
        // Rankings, lag and lead see the whole partition whatever the frame (as in
        // PostgreSQL); the others see their frame.
        let frame = frame(spec, scope)?;
        let framed = aggregate || name.ends_with("_value");
        let any_order = matches!(
            ranking,
            Some(
                RankKind::RowNumber
                    | RankKind::PercentRank
                    | RankKind::CumeDist
                    | RankKind::Ntile(_)
            )
        );
        if spec.order_by.is_empty() && !framed && !any_order {
            return Err(Error::plan(format!("{name}() OVER (…) needs ORDER BY")));
        }
        // Partition and order expressions, as columns the stage can read: computed ones
        // appended, plain columns read where they are.
        let mut exprs = Appended {
            base: plan.arity(),
            exprs: Vec::new(),
        };
        let base = exprs.base;
        let mut group_key = Vec::new();
        for e in &spec.partition_by {
            let (x, _) = ExprBinder::new(scope).bind(e)?;
            group_key.push(exprs.column(x));
        }
        let mut order = Vec::new();
        for o in &spec.order_by {
            let (x, _) = ExprBinder::new(scope).bind(&o.expr)?;
            order.push(super::query::order_key(exprs.column(x), o));
        }
        let (kind, ty) = match ranking {
            Some(kind @ (RankKind::PercentRank | RankKind::CumeDist)) => (kind, DataType::Float),
            Some(kind) => (kind, DataType::Int),
            None if framed => {
                let (func, value, arg, ty) = if aggregate {
                    let (call, ty) = ExprBinder::new(scope).aggregate_call(&name, &f)?;
                    if call.distinct {
                        return Err(Error::unsupported(format!(
                            "DISTINCT in the window aggregate {name}()"
                        )));
                    }
                    let func = match call.func {
                        AggFunc::CountStar => FrameFunc::CountStar,
                        AggFunc::Count => FrameFunc::Count,
                        AggFunc::Sum => FrameFunc::Sum,
                        AggFunc::Avg => FrameFunc::Avg,
                        AggFunc::Min => FrameFunc::Min,
                        AggFunc::Max => FrameFunc::Max,
                        AggFunc::StringAgg if !call.order.is_empty() => {
                            return Err(Error::unsupported(
                                "ORDER BY inside string_agg(…) OVER (the window's ORDER BY \
                                 orders it)",
                            ))
                        }
                        AggFunc::StringAgg => FrameFunc::StringAgg {
                            delimiter: exprs.column(call.extra[0].clone()),
                        },
                        AggFunc::Single => {
                            return Err(Error::unsupported(format!("{name}(…) OVER")))
                        }
                    };
                    (func, call.expr, call.arg_type, ty)
                } else {
                    let (value, vt) = ExprBinder::new(scope).bind(args[0])?;
                    let func = match name.as_str() {
                        "first_value" => FrameFunc::FirstValue,
                        "last_value" => FrameFunc::LastValue,
                        _ => match ExprBinder::new(scope).bind(args[1])? {
                            (ScalarExpr::Literal(Value::Int(n)), _) if n > 0 => {
                                FrameFunc::NthValue(n as u64)
                            }
                            _ => {
                                return Err(Error::unsupported(
                                    "nth_value() with n other than a positive integer constant",
                                ))
                            }
                        },
                    };
                    (func, value, vt.ty, vt.ty)
                };
                if frame.units == FrameUnits::Groups && spec.order_by.is_empty() {
                    return Err(Error::plan("GROUPS mode requires an ORDER BY clause"));
                }
                let value_col = match func {
                    FrameFunc::CountStar => 0,
                    _ => exprs.column(value),
                };
                let kind = RankKind::Window {
                    func,
                    value: value_col,
                    arg,
                    frame,
                };
                (kind, ty)
            }
            None => {
                // lag/lead: the value and the default, appended too; the offset a constant.
                let (value, vt) = ExprBinder::new(scope).bind(args[0])?;
                let offset = match args.get(1) {
                    None => 1,
                    Some(e) => match ExprBinder::new(scope).bind(e)? {
                        (ScalarExpr::Literal(Value::Int(n)), _) if n >= 0 => n as usize,
                        _ => {
                            return Err(Error::unsupported(format!(
                                "{name}() with an offset other than a non-negative integer constant"
                            )))
                        }
                    },
                };
                let mut ty = vt.ty;
                let default = match args.get(2) {
                    None => None,
                    Some(e) => {
                        let (d, dt) = ExprBinder::new(scope).bind(e)?;
                        ty = common_type(vt.ty, dt.ty).ok_or_else(|| {
                            Error::plan(format!(
                                "{name}() value and default types {} and {} cannot be matched",
                                vt.ty, dt.ty
                            ))
                        })?;
                        Some(coerce(d, dt.ty, ty))
                    }
                };
                let value_col = exprs.column(coerce(value, vt.ty, ty));
                let default = default.map(|d| exprs.column(d));
                let kind = match name.as_str() {
                    "lag" => RankKind::Lag {
                        value: value_col,
                        offset,
                        default,
                    },
                    _ => RankKind::Lead {
                        value: value_col,
                        offset,
                        default,
                    },
                };
                (kind, ty)
            }
        };
        let appended = exprs.exprs.len();
        plan = plan.map(exprs.exprs);
        for i in 0..appended {
            scope
                .columns
                .push(hidden(format!("?window{}", base + i), DataType::Null, true));
        }
        plan = Plan::TopK(TopKPlan {
            input: Box::new(plan),
            group_key,
            order,
            limit: None,
            offset: 0,
            rank: Some(kind),
        });
        let column = scope.columns.len();
        let nullable = !kind.is_rank()
            && !matches!(
                kind,
                RankKind::Window {
                    func: FrameFunc::Count | FrameFunc::CountStar,
                    ..
                }
            );
        scope.columns.push(hidden(format!("?{name}"), ty, nullable));
        columns.push((f, column, ColumnType { ty, nullable }));
    }
    Ok((plan, columns))
}

/// Replaces references to the SELECT's named windows (`OVER w`, `OVER (w ORDER BY …)`) in its
/// select list with the windows they name, as PostgreSQL combines them: the reference may add
/// an ORDER BY the named window lacks and a frame, and nothing else.
pub fn inline_named_windows(select: &mut ast::Select) -> Result<()> {
    if select.named_window.is_empty() {
        return Ok(());
    }
    let named = select.named_window.clone();
    let mut failed = None;
    let _ = ast::visit_expressions_mut(&mut select.projection, |e| {
        if let Expr::Function(f) = e {
            if let Some(over) = f.over.as_mut() {
                let spec = match over {
                    ast::WindowType::NamedWindow(w) => reference(w),
                    ast::WindowType::WindowSpec(spec) => spec.clone(),
                };
                match resolve(spec, &named, 0) {
                    Ok(spec) => *over = ast::WindowType::WindowSpec(spec),
                    Err(e) => {
                        failed = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A window that is only a reference to the named window `name`.
fn reference(name: &ast::Ident) -> ast::WindowSpec {
    ast::WindowSpec {
        window_name: Some(name.clone()),
        partition_by: vec![],
        order_by: vec![],
        window_frame: None,
    }
}

/// `spec` with its base window (if any) merged in.
fn resolve(
    spec: ast::WindowSpec,
    named: &[ast::NamedWindowDefinition],
    depth: usize,
) -> Result<ast::WindowSpec> {
    let Some(name) = spec.window_name.clone() else {
        return Ok(spec);
    };
    let base = named
        .iter()
        .find(|d| d.0.value == name.value)
        .ok_or_else(|| Error::plan(format!("window \"{}\" does not exist", name.value)))?;
    if depth > named.len() {
        return Err(Error::plan(format!(
            "window \"{}\" refers to itself",
            name.value
        )));
    }
    let base = match &base.1 {
        ast::NamedWindowExpr::NamedWindow(other) => reference(other),
        ast::NamedWindowExpr::WindowSpec(s) => s.clone(),
    };
    let base = resolve(base, named, depth + 1)?;
    if !spec.partition_by.is_empty() {
        return Err(Error::plan(format!(
            "cannot override PARTITION BY clause of window \"{}\"",
            name.value
        )));
    }
    if !spec.order_by.is_empty() && !base.order_by.is_empty() {
        return Err(Error::plan(format!(
            "cannot override ORDER BY clause of window \"{}\"",
            name.value
        )));
    }
    if base.window_frame.is_some() && (spec.window_frame.is_some() || !spec.order_by.is_empty()) {
        return Err(Error::plan(format!(
            "cannot copy window \"{}\" because it has a frame clause",
            name.value
        )));
    }
    Ok(ast::WindowSpec {
        window_name: None,
        partition_by: base.partition_by,
        order_by: match spec.order_by.is_empty() {
            true => base.order_by,
            false => spec.order_by,
        },
        window_frame: spec.window_frame.or(base.window_frame),
    })
}

/// The frame of a window specification, checked as PostgreSQL checks it; the default (the
/// partition's start to the current row's last peer) without one.
fn frame(spec: &ast::WindowSpec, scope: &Scope) -> Result<Frame> {
    let Some(f) = &spec.window_frame else {
        return Ok(Frame::DEFAULT);
    };
    let units = match f.units {
        ast::WindowFrameUnits::Rows => FrameUnits::Rows,
        ast::WindowFrameUnits::Range => FrameUnits::Range,
        ast::WindowFrameUnits::Groups => FrameUnits::Groups,
    };
    let has_offset = |b: &ast::WindowFrameBound| {
        matches!(
            b,
            ast::WindowFrameBound::Preceding(Some(_)) | ast::WindowFrameBound::Following(Some(_))
        )
    };
    // RANGE offsets are distances in the one ORDER BY value's type.
    let mut float = false;
    let range_type = match units == FrameUnits::Range
        && (has_offset(&f.start_bound) || f.end_bound.as_ref().is_some_and(has_offset))
    {
        false => None,
        true => {
            let [o] = spec.order_by.as_slice() else {
                return Err(Error::plan(
                    "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column",
                ));
            };
            let (_, t) = ExprBinder::new(scope).bind(&o.expr)?;
            float = t.ty == DataType::Float;
            match t.ty {
                DataType::Int | DataType::Float | DataType::Timestamp | DataType::Interval => {
                    Some(t.ty)
                }
                other => {
                    return Err(Error::unsupported(format!(
                        "RANGE with offset PRECEDING/FOLLOWING on {other}"
                    )))
                }
            }
        }
    };
    let bound = |b: &ast::WindowFrameBound, which: &str| -> Result<FrameBound> {
        let offset = |e: &Expr| -> Result<u64> {
            if let Some(order) = range_type {
                return range_offset(e, order, scope);
            }
            match e {
                Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<u64>().map_err(|_| {
                        Error::plan(format!(
                            "frame {which} offset must be a non-negative integer"
                        ))
                    }),
                    _ => Err(Error::plan(format!(
                        "frame {which} offset must be a non-negative integer"
                    ))),
                },
                Expr::UnaryOp {
                    op: ast::UnaryOperator::Minus,
                    ..
                } => Err(Error::plan(format!(
                    "frame {which} offset must not be negative"
                ))),
                _ => Err(Error::unsupported(format!(
                    "a frame {which} offset other than an integer constant"
                ))),
            }
        };
        Ok(match b {
            ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
            ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
            ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
            ast::WindowFrameBound::Preceding(Some(e)) => FrameBound::Preceding(offset(e)?),
            ast::WindowFrameBound::Following(Some(e)) => FrameBound::Following(offset(e)?),
        })
    };
    let start = bound(&f.start_bound, "starting")?;
    let end = match &f.end_bound {
        Some(b) => bound(b, "ending")?,
        None => FrameBound::CurrentRow,
    };
    let rank = |b: FrameBound| match b {
        FrameBound::UnboundedPreceding => 0,
        FrameBound::Preceding(_) => 1,
        FrameBound::CurrentRow => 2,
        FrameBound::Following(_) => 3,
        FrameBound::UnboundedFollowing => 4,
    };
    match (start, end) {
        (FrameBound::UnboundedFollowing, _) => {
            Err(Error::plan("frame start cannot be UNBOUNDED FOLLOWING"))
        }
        (_, FrameBound::UnboundedPreceding) => {
            Err(Error::plan("frame end cannot be UNBOUNDED PRECEDING"))
        }
        (FrameBound::CurrentRow, FrameBound::Preceding(_)) => Err(Error::plan(
            "frame starting from current row cannot have preceding rows",
        )),
        (FrameBound::Following(_), e) if rank(e) < 3 => Err(Error::plan(
            "frame starting from following row cannot have preceding rows",
        )),
        _ => Ok(Frame {
            units,
            start,
            end,
            float,
        }),
    }
}

/// A RANGE frame's offset from the ORDER BY value (of type `order`): a constant of that type
/// (an interval for timestamps), not negative, as the bits [`Frame`] keeps.
fn range_offset(e: &Expr, order: DataType, scope: &Scope) -> Result<u64> {
    let (x, t) = ExprBinder::new(scope).bind(e)?;
    let want = match order {
        DataType::Timestamp | DataType::Interval => DataType::Interval,
        other => other,
    };
    let invalid = || Error::plan("invalid preceding or following size in window function");
    let value = match coerce(x, t.ty, want).reduce_constants() {
        ScalarExpr::Literal(v) => v,
        _ => return Err(Error::unsupported("a RANGE offset other than a constant")),
    };
    match (want, value) {
        (DataType::Int | DataType::Interval, Value::Int(n) | Value::Interval(n)) => {
            u64::try_from(n).map_err(|_| invalid())
        }
        (DataType::Float, Value::Float(f)) if f.0 >= 0.0 => Ok(f.0.to_bits()),
        (DataType::Float, Value::Int(n)) if n >= 0 => Ok((n as f64).to_bits()),
        (_, Value::Null) => Err(Error::plan("frame offset must not be null")),
        (_, Value::Float(_) | Value::Int(_) | Value::Interval(_)) => Err(invalid()),
        (want, v) => Err(Error::plan(format!(
            "RANGE offset {} does not match the ORDER BY type {}; it must be {}",
            v.data_type(),
            order,
            want
        ))),
    }
}

/// Expressions a window stage reads, appended to its input's `base` columns unless they are
/// one of them.
struct Appended {
    base: usize,
    exprs: Vec<ScalarExpr>,
}

impl Appended {
    /// The column holding `x`.
    fn column(&mut self, x: ScalarExpr) -> usize {
        if let ScalarExpr::Column(c) = x {
            return c;
        }
        self.exprs.push(x);
        self.base + self.exprs.len() - 1
    }
}

fn hidden(name: String, ty: DataType, nullable: bool) -> ScopeColumn {
    ScopeColumn {
        table: None,
        name,
        ty,
        nullable,
        hidden: true,
    }
}
