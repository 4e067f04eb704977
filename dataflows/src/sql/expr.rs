//! Binding SQL expressions: names become column positions, functions are resolved, operands get
//! implicit casts, and every expression gets a type.
//!
//! In an aggregating SELECT the binder runs in "aggregate mode" over the output of the Reduce:
//! a sub-expression equal to a GROUP BY expression becomes that key column, an aggregate call
//! becomes its aggregate column, and any other column reference is the familiar
//! "must appear in the GROUP BY clause" error.

use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};

use super::scope::Scope;
use super::types::{coerce, common_type, sql_type};
use crate::error::{Error, Result};
use crate::expr::{BinaryFunc, ColumnType, ScalarExpr, UnaryFunc, VariadicFunc};
use crate::plan::{AggFunc, AggregateExpr};
use crate::value::{parse_interval, DataType, Value};

/// Deepest expression nesting accepted; deeper input is rejected, never a stack overflow.
const MAX_DEPTH: usize = 128;

/// Aggregation state of one SELECT: its group keys and the aggregates found so far.
#[derive(Default)]
pub struct AggContext {
    pub group_asts: Vec<Expr>,
    pub group_exprs: Vec<ScalarExpr>,
    pub group_types: Vec<ColumnType>,
    pub aggregates: Vec<AggregateExpr>,
    pub agg_types: Vec<ColumnType>,
}

/// Binds expressions against a scope.
pub struct ExprBinder<'a> {
    pub scope: &'a Scope,
    pub agg: Option<&'a mut AggContext>,
    depth: usize,
    /// Window function calls already computed, and the columns that hold them.
    windows: &'a [super::ranking::WindowColumn],
}

type Bound = (ScalarExpr, ColumnType);

fn ct(ty: DataType, nullable: bool) -> ColumnType {
    ColumnType { ty, nullable }
}

/// Whether the function name is an aggregate.
pub fn is_aggregate_name(name: &str) -> bool {
    matches!(
        name,
        "count" | "sum" | "min" | "max" | "avg" | "bool_and" | "every" | "bool_or" | "string_agg"
    )
}

/// Whether `e` contains an aggregate call (not looking into subqueries, which aggregate on
/// their own).
pub fn contains_aggregate(e: &Expr) -> bool {
    let mut found = false;
    visit_functions(e, &mut |f| {
        if is_aggregate_name(&function_name(&f.name)) && f.over.is_none() {
            found = true;
        }
    });
    found
}

/// Calls `f` on every function call in `e`, outside subqueries (which are planned on their
/// own), outer calls before the calls in their arguments.
pub fn visit_functions(e: &Expr, f: &mut dyn FnMut(&ast::Function)) {
    struct Finder<'f> {
        depth: usize,
        f: &'f mut dyn FnMut(&ast::Function),
    }
    impl ast::Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &ast::Query) -> std::ops::ControlFlow<()> {
            self.depth += 1;
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &ast::Query) -> std::ops::ControlFlow<()> {
            self.depth -= 1;
            std::ops::ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, x: &Expr) -> std::ops::ControlFlow<()> {
            if let Expr::Function(func) = x {
                if self.depth == 0 {
                    (self.f)(func);
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = ast::Visit::visit(e, &mut Finder { depth: 0, f });
}

pub fn function_name(name: &ast::ObjectName) -> String {
    name.to_string().to_ascii_lowercase()
}

impl<'a> ExprBinder<'a> {
    pub fn new(scope: &'a Scope) -> Self {
        ExprBinder {
            scope,
            agg: None,
            depth: 0,
            windows: &[],
        }
    }

    /// Reads the given window function calls from their columns (`sql::ranking`).
    pub fn with_windows(mut self, windows: &'a [super::ranking::WindowColumn]) -> Self {
        self.windows = windows;
        self
    }

    pub fn with_aggregates(scope: &'a Scope, agg: &'a mut AggContext) -> Self {
        ExprBinder {
            scope,
            agg: Some(agg),
            depth: 0,
            windows: &[],
        }
    }

    /// Binds `e` and requires a boolean (for WHERE, HAVING, ON).
    pub fn bind_predicate(&mut self, e: &Expr, clause: &str) -> Result<ScalarExpr> {
        let (x, t) = self.bind(e)?;
        match t.ty {
            DataType::Bool | DataType::Null => Ok(x),
            other => Err(Error::plan(format!(
                "argument of {clause} must be type boolean, not type {other}"
            ))),
        }
    }

    pub fn bind(&mut self, e: &Expr) -> Result<Bound> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::plan(format!(
                "expression nested more than {MAX_DEPTH} levels deep"
            )));
        }
        let r = self.bind_inner(e);
        self.depth -= 1;
        r.map(|(x, t)| (x.reduce_constants(), t))
    }

    fn bind_inner(&mut self, e: &Expr) -> Result<Bound> {
        if self.agg.is_some() {
            if let Some(b) = self.bind_group_reference(e)? {
                return Ok(b);
            }
        }
        match e {
            Expr::Identifier(id)
                if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") =>
            {
                Err(Error::unsupported("DEFAULT outside of INSERT … VALUES"))
            }
            Expr::Identifier(id) => self.column(None, &super::ident(id)),
            Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [t, c] => self.column(Some(&super::ident(t)), &super::ident(c)),
                [_, t, c] => self.column(Some(&super::ident(t)), &super::ident(c)),
                _ => Err(Error::unsupported(format!("column reference {e}"))),
            },
            Expr::Value(v) => literal(&v.value),
            Expr::Nested(inner) => self.bind(inner),
            Expr::TypedString(ts) => {
                let ty = sql_type(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let v = Value::text(&text)
                    .cast(ty)
                    .map_err(|e| Error::plan(e.to_string()))?;
                Ok((ScalarExpr::Literal(v), ct(ty, false)))
            }
            Expr::Interval(iv) => {
                let text = match iv.value.as_ref() {
                    Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    other => {
                        return Err(Error::unsupported(format!("interval expression {other}")))
                    }
                };
                let text = match &iv.leading_field {
                    Some(f) => format!("{text} {}", f.to_string().to_ascii_lowercase()),
                    None => text,
                };
                let us = parse_interval(&text)
                    .ok_or_else(|| Error::plan(format!("invalid interval \"{text}\"")))?;
                Ok((
                    ScalarExpr::Literal(Value::Interval(us)),
                    ct(DataType::Interval, false),
                ))
            }
            Expr::IsNull(x) => self.unary_bool(x, UnaryFunc::IsNull),
            Expr::IsNotNull(x) => self.unary_bool(x, UnaryFunc::IsNotNull),
            Expr::IsTrue(x) => self.unary_bool(x, UnaryFunc::IsTrue),
            Expr::IsFalse(x) => self.unary_bool(x, UnaryFunc::IsFalse),
            Expr::IsNotTrue(x) => {
                let (b, _) = self.unary_bool(x, UnaryFunc::IsTrue)?;
                Ok((b.call_unary(UnaryFunc::Not), ct(DataType::Bool, false)))
            }
            Expr::IsNotFalse(x) => {
                let (b, _) = self.unary_bool(x, UnaryFunc::IsFalse)?;
                Ok((b.call_unary(UnaryFunc::Not), ct(DataType::Bool, false)))
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                // a IS DISTINCT FROM b  ==  NOT coalesce(a = b, a IS NULL AND b IS NULL)
                let (a, b, _) = self.comparable(a, b)?;
                let both_null = ScalarExpr::Variadic(
                    VariadicFunc::And,
                    vec![
                        a.clone().call_unary(UnaryFunc::IsNull),
                        b.clone().call_unary(UnaryFunc::IsNull),
                    ],
                );
                let eq = ScalarExpr::Variadic(
                    VariadicFunc::Coalesce,
                    vec![a.call_binary(BinaryFunc::Eq, b), both_null],
                );
                let out = if matches!(e, Expr::IsDistinctFrom(..)) {
                    eq.call_unary(UnaryFunc::Not)
                } else {
                    eq
                };
                Ok((out, ct(DataType::Bool, false)))
            }
            Expr::UnaryOp { op, expr } => {
                let (x, t) = self.bind(expr)?;
                match op {
                    UnaryOperator::Not => {
                        expect_bool(t.ty, "NOT")?;
                        Ok((x.call_unary(UnaryFunc::Not), t))
                    }
                    UnaryOperator::Minus => {
                        if !t.ty.is_numeric()
                            && t.ty != DataType::Interval
                            && t.ty != DataType::Null
                        {
                            return Err(Error::plan(format!(
                                "operator does not exist: - {}",
                                t.ty
                            )));
                        }
                        Ok((x.call_unary(UnaryFunc::Neg), t))
                    }
                    UnaryOperator::Plus => Ok((x, t)),
                    other => Err(Error::unsupported(format!("unary operator {other}"))),
                }
            }
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right),
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            }
            | Expr::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            } => {
                if escape_char.is_some() || *any {
                    return Err(Error::unsupported("LIKE with ESCAPE or ANY"));
                }
                let func = if matches!(e, Expr::ILike { .. }) {
                    BinaryFunc::ILike
                } else {
                    BinaryFunc::Like
                };
                let (x, xt) = self.bind(expr)?;
                let (p, pt) = self.bind(pattern)?;
                let x = coerce(x, xt.ty, DataType::Text);
                let p = coerce(p, pt.ty, DataType::Text);
                let out = x.call_binary(func, p);
                let out = if *negated {
                    out.call_unary(UnaryFunc::Not)
                } else {
                    out
                };
                Ok((out, ct(DataType::Bool, xt.nullable || pt.nullable)))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x1, l, _) = self.comparable(expr, low)?;
                let (x2, h, _) = self.comparable(expr, high)?;
                let out = ScalarExpr::Variadic(
                    VariadicFunc::And,
                    vec![
                        x1.call_binary(BinaryFunc::Gte, l),
                        x2.call_binary(BinaryFunc::Lte, h),
                    ],
                );
                let out = if *negated {
                    out.call_unary(UnaryFunc::Not)
                } else {
                    out
                };
                Ok((out, ct(DataType::Bool, true)))
            }
            Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => {
                // x IN (a, b) == x = a OR x = b, with SQL's NULL behaviour for free.
                let mut ors = Vec::new();
                for item in list {
                    let (x, y, _) = self.comparable(expr, item)?;
                    ors.push(x.call_binary(BinaryFunc::Eq, y));
                }
                let out = if ors.is_empty() {
                    ScalarExpr::Literal(Value::Bool(false))
                } else {
                    ScalarExpr::Variadic(VariadicFunc::Or, ors)
                };
                let out = if *negated {
                    out.call_unary(UnaryFunc::Not)
                } else {
                    out
                };
                Ok((out, ct(DataType::Bool, true)))
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            Expr::Cast {
                expr, data_type, ..
            } => {
                let ty = sql_type(data_type)?;
                // A number cast to numeric is read from its digits, not through a double.
                if ty == DataType::Numeric {
                    if let Some(v) = numeric_literal(expr) {
                        return Ok((ScalarExpr::Literal(v), ct(ty, false)));
                    }
                }
                let (x, t) = self.bind(expr)?;
                Ok((x.call_unary(UnaryFunc::Cast(ty)), ct(ty, t.nullable)))
            }
            Expr::Extract { field, expr, .. } => {
                let (x, t) = self.bind(expr)?;
                let field = field.to_string().to_ascii_lowercase();
                Ok((
                    x.call_unary(UnaryFunc::Extract(field)),
                    ct(DataType::Float, t.nullable),
                ))
            }
            Expr::Ceil { expr, .. } => self.call_function("ceil", &[expr.as_ref().clone()]),
            Expr::Floor { expr, .. } => self.call_function("floor", &[expr.as_ref().clone()]),
            Expr::Position { expr, r#in } => {
                self.call_function("strpos", &[r#in.as_ref().clone(), expr.as_ref().clone()])
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![expr.as_ref().clone()];
                args.push(
                    substring_from
                        .as_deref()
                        .cloned()
                        .unwrap_or(Expr::value(ast::Value::Number("1".into(), false))),
                );
                if let Some(f) = substring_for {
                    args.push(f.as_ref().clone());
                }
                self.call_function("substr", &args)
            }
            Expr::Trim {
                trim_where,
                trim_what,
                expr,
                ..
            } => {
                if trim_what.is_some() {
                    return Err(Error::unsupported("TRIM with characters"));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                self.call_function(name, &[expr.as_ref().clone()])
            }
            Expr::Function(f) => self.function(f),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { .. } => Err(Error::unsupported(
                "a subquery in this position (subqueries are supported in FROM and WITH)",
            )),
            other => Err(Error::unsupported(format!("expression {other}"))),
        }
    }

    fn column(&mut self, table: Option<&str>, name: &str) -> Result<Bound> {
        if self.agg.is_some() {
            // A bare column in an aggregating SELECT must be a group key (checked by the caller
            // first); reaching here means it is not.
            let i = self.scope.resolve(table, name)?;
            // A subquery's value joined after the Reduce: placed once its width is known.
            if self.scope.columns[i].table.as_deref() == Some(super::subquery::AFTER_AGGREGATION) {
                return Ok((
                    ScalarExpr::Column(super::subquery::AFTER_AGGREGATION_COLUMNS + i),
                    self.scope.column_type(i),
                ));
            }
            let agg = self.agg.as_deref().expect("checked");
            if let Some(k) = agg
                .group_exprs
                .iter()
                .position(|g| *g == ScalarExpr::Column(i))
            {
                return Ok((ScalarExpr::Column(k), agg.group_types[k]));
            }
            let shown = table
                .map(|t| format!("{t}.{name}"))
                .unwrap_or_else(|| name.to_string());
            return Err(Error::plan(format!(
                "column \"{shown}\" must appear in the GROUP BY clause or be used in an aggregate function"
            )));
        }
        let i = self.scope.resolve(table, name)?;
        Ok((ScalarExpr::Column(i), self.scope.column_type(i)))
    }

    /// In aggregate mode: a group-key expression or an aggregate call becomes a column of the
    /// Reduce output.
    fn bind_group_reference(&mut self, e: &Expr) -> Result<Option<Bound>> {
        let agg = self.agg.as_deref_mut().expect("aggregate mode");
        if let Some(k) = agg.group_asts.iter().position(|g| g == e) {
            return Ok(Some((ScalarExpr::Column(k), agg.group_types[k])));
        }
        if let Expr::Function(f) = e {
            let name = function_name(&f.name);
            if is_aggregate_name(&name) && f.over.is_none() {
                return self.aggregate(&name, f).map(Some);
            }
            // `hop_end(args)` / `tumble_end(args)` when grouping by `hop(args)` / `tumble(args)`.
            if let Some(start) = super::window::start_function(&name) {
                let key = agg.group_asts.iter().position(|g| {
                    matches!(g, Expr::Function(gf) if function_name(&gf.name) == start && gf.args == f.args)
                });
                if let Some(k) = key {
                    let size = super::window::window_size(self.scope, f)?;
                    let ty = agg.group_types[k];
                    // A window's end cannot fail where its start (the key) did not: `tumble`
                    // and `hop` check the end too.
                    return Ok(Some((
                        ScalarExpr::Column(k).call_binary(BinaryFunc::WindowEnd, size),
                        ct(DataType::Timestamp, ty.nullable),
                    )));
                }
            }
        }
        Ok(None)
    }

    /// An aggregate call's function, argument (bound in this binder's scope: the input rows)
    /// and result type, for `GROUP BY` and for window aggregates.
    pub fn aggregate_call(
        &mut self,
        name: &str,
        f: &ast::Function,
    ) -> Result<(AggregateExpr, DataType)> {
        if !f.within_group.is_empty() {
            return Err(Error::unsupported(format!("{name} with WITHIN GROUP")));
        }
        let ast::FunctionArguments::List(list) = &f.args else {
            return Err(Error::plan(format!("{name} needs an argument")));
        };
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        let (mut extra, mut order) = (Vec::new(), Vec::new());
        let star = matches!(
            list.args.as_slice(),
            [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)]
        );
        let (func, expr, arg_type) = if star {
            if name != "count" {
                return Err(Error::plan(format!("{name}(*) is not valid")));
            }
            (
                AggFunc::CountStar,
                ScalarExpr::Literal(Value::Null),
                DataType::Null,
            )
        } else {
            let args = list
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                    other => Err(Error::unsupported(format!(
                        "the argument {other} of {name}"
                    ))),
                })
                .collect::<Result<Vec<&Expr>>>()?;
            let wanted = if name == "string_agg" { 2 } else { 1 };
            if args.len() != wanted {
                return Err(Error::plan(match wanted {
                    2 => format!("{name} takes two arguments (the value and the delimiter)"),
                    _ => format!("{name} takes exactly one argument"),
                }));
            }
            if args.iter().any(|a| contains_aggregate(a)) {
                return Err(Error::plan("aggregate function calls cannot be nested"));
            }
            // The argument is evaluated on the input rows, not the Reduce output.
            let (x, t) = ExprBinder::new(self.scope).bind(args[0])?;
            let func = match name {
                "count" => AggFunc::Count,
                "sum" => AggFunc::Sum,
                // Over booleans false < true: every value true is the least one true.
                "min" | "bool_and" | "every" => AggFunc::Min,
                "max" | "bool_or" => AggFunc::Max,
                "string_agg" => AggFunc::StringAgg,
                _ => AggFunc::Avg,
            };
            if matches!(name, "bool_and" | "every" | "bool_or")
                && !matches!(t.ty, DataType::Bool | DataType::Null)
            {
                return Err(Error::plan(format!(
                    "function {name}({}) does not exist",
                    t.ty
                )));
            }
            if matches!(func, AggFunc::Sum | AggFunc::Avg)
                && !t.ty.is_numeric()
                && t.ty != DataType::Null
                && t.ty != DataType::Interval
            {
                return Err(Error::plan(format!(
                    "function {name}({}) does not exist",
                    t.ty
                )));
            }
            if func == AggFunc::StringAgg {
                let (delimiter, dt) = ExprBinder::new(self.scope).bind(args[1])?;
                if !matches!(t.ty, DataType::Text | DataType::Null)
                    || !matches!(dt.ty, DataType::Text | DataType::Null)
                {
                    return Err(Error::plan(format!(
                        "function string_agg({}, {}) does not exist",
                        t.ty, dt.ty
                    )));
                }
                extra.push(delimiter);
            }
            (func, x, t.ty)
        };
        // The call's own ORDER BY matters only to string_agg; the other aggregates do not
        // depend on the order of their input, so it is accepted and ignored, as PostgreSQL
        // does.
        for clause in &list.clauses {
            match clause {
                ast::FunctionArgumentClause::OrderBy(keys) if func == AggFunc::StringAgg => {
                    for key in keys {
                        if contains_aggregate(&key.expr) {
                            return Err(Error::plan("aggregate function calls cannot be nested"));
                        }
                        let (e, _) = ExprBinder::new(self.scope).bind(&key.expr)?;
                        if distinct && e != expr {
                            return Err(Error::plan(
                                "in an aggregate with DISTINCT, ORDER BY expressions must appear \
                                 in argument list",
                            ));
                        }
                        order.push(super::query::order_key(extra.len(), key));
                        extra.push(e);
                    }
                }
                ast::FunctionArgumentClause::OrderBy(_) => {}
                other => return Err(Error::unsupported(format!("{other} in a call of {name}"))),
            }
        }
        // `agg(x) FILTER (WHERE p)` is `agg(CASE WHEN p THEN x END)`: the rows where p does
        // not hold give NULL, which no aggregate counts; `count(*)` counts a constant.
        let (func, expr, arg_type) = match &f.filter {
            None => (func, expr, arg_type),
            Some(p) => {
                if contains_aggregate(p) {
                    return Err(Error::plan("aggregate functions are not allowed in FILTER"));
                }
                let cond = ExprBinder::new(self.scope).bind_predicate(p, "FILTER")?;
                let (func, then, arg_type) = match func {
                    AggFunc::CountStar => (
                        AggFunc::Count,
                        ScalarExpr::Literal(Value::Int(1)),
                        DataType::Int,
                    ),
                    other => (other, expr, arg_type),
                };
                let guarded = ScalarExpr::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    els: Box::new(ScalarExpr::Literal(Value::Null)),
                };
                (func, guarded, arg_type)
            }
        };
        let out_ty = func.output_type(
            if arg_type == DataType::Null && func != AggFunc::CountStar {
                DataType::Int
            } else {
                arg_type
            },
        );
        Ok((
            AggregateExpr {
                func,
                expr,
                distinct,
                arg_type,
                extra,
                order,
            },
            out_ty,
        ))
    }

    fn aggregate(&mut self, name: &str, f: &ast::Function) -> Result<Bound> {
        let (candidate, out_ty) = self.aggregate_call(name, f)?;
        let func = candidate.func;
        let agg = self.agg.as_deref_mut().expect("aggregate mode");
        let idx = match agg.aggregates.iter().position(|a| *a == candidate) {
            Some(i) => i,
            None => {
                agg.aggregates.push(candidate);
                agg.agg_types.push(ct(
                    out_ty,
                    !matches!(func, AggFunc::Count | AggFunc::CountStar),
                ));
                agg.aggregates.len() - 1
            }
        };
        let col = agg.group_exprs.len() + idx;
        Ok((ScalarExpr::Column(col), agg.agg_types[idx]))
    }

    fn unary_bool(&mut self, x: &Expr, f: UnaryFunc) -> Result<Bound> {
        let (x, _) = self.bind(x)?;
        Ok((x.call_unary(f), ct(DataType::Bool, false)))
    }

    /// Binds two operands and converts them to their common type.
    fn comparable(&mut self, a: &Expr, b: &Expr) -> Result<(ScalarExpr, ScalarExpr, ColumnType)> {
        let (x, xt) = self.bind(a)?;
        let (y, yt) = self.bind(b)?;
        // A string literal adapts to the other side's type; a text column does not.
        let text_column = |e: &ScalarExpr, t: DataType| t == DataType::Text && !e.is_literal();
        if (text_column(&x, xt.ty) && yt.ty != DataType::Text && yt.ty != DataType::Null)
            || (text_column(&y, yt.ty) && xt.ty != DataType::Text && xt.ty != DataType::Null)
        {
            return Err(Error::plan(format!(
                "operator does not exist: {} = {} (add an explicit cast)",
                xt.ty, yt.ty
            )));
        }
        let ty = common_type(xt.ty, yt.ty)
            .ok_or_else(|| Error::plan(format!("cannot compare {} with {}", xt.ty, yt.ty)))?;
        Ok((
            coerce(x, xt.ty, ty),
            coerce(y, yt.ty, ty),
            ct(ty, xt.nullable || yt.nullable),
        ))
    }

    fn binary(&mut self, left: &Expr, op: &BinaryOperator, right: &Expr) -> Result<Bound> {
        use BinaryOperator as B;
        match op {
            B::And | B::Or => {
                let (x, xt) = self.bind(left)?;
                let (y, yt) = self.bind(right)?;
                expect_bool(xt.ty, &op.to_string())?;
                expect_bool(yt.ty, &op.to_string())?;
                let f = if *op == B::And {
                    VariadicFunc::And
                } else {
                    VariadicFunc::Or
                };
                // Flatten nested ANDs/ORs so conjunct splitting sees them.
                let mut args = Vec::new();
                for e in [x, y] {
                    match e {
                        ScalarExpr::Variadic(g, inner) if g == f => args.extend(inner),
                        e => args.push(e),
                    }
                }
                Ok((
                    ScalarExpr::Variadic(f, args),
                    ct(DataType::Bool, xt.nullable || yt.nullable),
                ))
            }
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                let (x, y, t) = self.comparable(left, right)?;
                let f = match op {
                    B::Eq => BinaryFunc::Eq,
                    B::NotEq => BinaryFunc::NotEq,
                    B::Lt => BinaryFunc::Lt,
                    B::LtEq => BinaryFunc::Lte,
                    B::Gt => BinaryFunc::Gt,
                    _ => BinaryFunc::Gte,
                };
                Ok((x.call_binary(f, y), ct(DataType::Bool, t.nullable)))
            }
            B::StringConcat => {
                let (x, xt) = self.bind(left)?;
                let (y, yt) = self.bind(right)?;
                Ok((
                    x.call_binary(BinaryFunc::Concat, y),
                    ct(DataType::Text, xt.nullable || yt.nullable),
                ))
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                let (x, xt) = self.bind(left)?;
                let (y, yt) = self.bind(right)?;
                let f = match op {
                    B::Plus => BinaryFunc::Add,
                    B::Minus => BinaryFunc::Sub,
                    B::Multiply => BinaryFunc::Mul,
                    B::Divide => BinaryFunc::Div,
                    _ => BinaryFunc::Mod,
                };
                let nullable = xt.nullable || yt.nullable;
                use DataType::*;
                let (x, y, ty) = match (xt.ty, yt.ty) {
                    (a, b) if a.is_numeric() && b.is_numeric() || a == Null || b == Null => {
                        let ty = common_type(a, b).unwrap_or(Int);
                        let ty = if ty == Null { Int } else { ty };
                        (coerce(x, a, ty), coerce(y, b, ty), ty)
                    }
                    (Timestamp, Interval) | (Interval, Timestamp) | (Date, Interval)
                        if matches!(f, BinaryFunc::Add | BinaryFunc::Sub) =>
                    {
                        (x, y, Timestamp)
                    }
                    (Timestamp, Timestamp) if f == BinaryFunc::Sub => (x, y, Interval),
                    (Interval, Interval) if matches!(f, BinaryFunc::Add | BinaryFunc::Sub) => {
                        (x, y, Interval)
                    }
                    (Date, Int) if matches!(f, BinaryFunc::Add | BinaryFunc::Sub) => (x, y, Date),
                    (Date, Date) if f == BinaryFunc::Sub => (x, y, Int),
                    (Interval, Int | Float) if matches!(f, BinaryFunc::Mul | BinaryFunc::Div) => {
                        (x, coerce(y, yt.ty, Float), Interval)
                    }
                    (Int | Float, Interval) if f == BinaryFunc::Mul => {
                        (coerce(x, xt.ty, Float), y, Interval)
                    }
                    (a, b) => {
                        return Err(Error::plan(format!(
                            "operator does not exist: {a} {op} {b}"
                        )))
                    }
                };
                Ok((x.call_binary(f, y), ct(ty, nullable)))
            }
            other => Err(Error::unsupported(format!("operator {other}"))),
        }
    }

    fn case(
        &mut self,
        operand: Option<&Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&Expr>,
    ) -> Result<Bound> {
        let mut results = Vec::new();
        let mut conds = Vec::new();
        for w in conditions {
            let cond = match operand {
                Some(op) => {
                    let (x, y, _) = self.comparable(op, &w.condition)?;
                    x.call_binary(BinaryFunc::Eq, y)
                }
                None => self.bind_predicate(&w.condition, "CASE")?,
            };
            conds.push(cond);
            results.push(self.bind(&w.result)?);
        }
        let els = match else_result {
            Some(e) => self.bind(e)?,
            None => (ScalarExpr::Literal(Value::Null), ct(DataType::Null, true)),
        };
        let mut ty = els.1.ty;
        for (_, t) in &results {
            ty = common_type(ty, t.ty).ok_or_else(|| {
                Error::plan(format!("CASE types {} and {} cannot be matched", ty, t.ty))
            })?;
        }
        let nullable = els.1.nullable || results.iter().any(|(_, t)| t.nullable);
        let mut out = coerce(els.0, els.1.ty, ty);
        for (cond, (r, rt)) in conds.into_iter().zip(results).rev() {
            out = ScalarExpr::If {
                cond: Box::new(cond),
                then: Box::new(coerce(r, rt.ty, ty)),
                els: Box::new(out),
            };
        }
        Ok((out, ct(ty, nullable)))
    }

    fn function(&mut self, f: &ast::Function) -> Result<Bound> {
        let name = function_name(&f.name);
        if f.over.is_some() {
            if let Some((_, col, ty)) = self.windows.iter().find(|(w, _, _)| w == f) {
                return Ok((ScalarExpr::Column(*col), *ty));
            }
            return Err(Error::plan(format!(
                "window function {name}(…) OVER is allowed only in the select list and ORDER BY of a SELECT without GROUP BY"
            )));
        }
        if is_aggregate_name(&name) {
            return Err(Error::plan(format!(
                "aggregate function {name} is not allowed here"
            )));
        }
        let args: Vec<Expr> = match &f.args {
            ast::FunctionArguments::None => vec![],
            ast::FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                    other => Err(Error::unsupported(format!("function argument {other}"))),
                })
                .collect::<Result<_>>()?,
            ast::FunctionArguments::Subquery(_) => {
                return Err(Error::unsupported("subquery as function argument"))
            }
        };
        self.call_function(&name, &args)
    }

    fn call_function(&mut self, name: &str, args: &[Expr]) -> Result<Bound> {
        let arity_error = || {
            Error::plan(format!(
                "function {name} does not accept {} arguments",
                args.len()
            ))
        };
        let mut bound = Vec::with_capacity(args.len());
        for a in args {
            bound.push(self.bind(a)?);
        }
        let nullable = bound.iter().any(|(_, t)| t.nullable);
        let unary = |f: UnaryFunc,
                     ty: DataType,
                     bound: &mut Vec<Bound>,
                     want: Option<DataType>|
         -> Result<Bound> {
            if bound.len() != 1 {
                return Err(arity_error());
            }
            let (x, t) = bound.pop().expect("one");
            let x = match want {
                Some(w) => coerce(x, t.ty, w),
                None => x,
            };
            Ok((x.call_unary(f), ct(ty, t.nullable)))
        };
        let first_ty = bound.first().map(|(_, t)| t.ty).unwrap_or(DataType::Null);
        match name {
            "abs" => unary(UnaryFunc::Abs, first_ty, &mut bound, None),
            // On numeric, exact and numeric; on other numbers, double precision.
            "floor" | "ceil" | "ceiling" | "sign" | "round"
                if name != "round" || bound.len() == 1 =>
            {
                let f = match name {
                    "floor" => UnaryFunc::Floor,
                    "sign" => UnaryFunc::Sign,
                    "round" => UnaryFunc::Round,
                    _ => UnaryFunc::Ceil,
                };
                let ty = match first_ty {
                    DataType::Numeric => DataType::Numeric,
                    _ => DataType::Float,
                };
                unary(f, ty, &mut bound, Some(ty))
            }
            "round" if bound.len() == 2 => {
                let (d, dt) = bound.pop().expect("two");
                let (x, xt) = bound.pop().expect("two");
                let ty = match xt.ty {
                    DataType::Numeric => DataType::Numeric,
                    _ => DataType::Float,
                };
                Ok((
                    coerce(x, xt.ty, ty)
                        .call_binary(BinaryFunc::RoundTo, coerce(d, dt.ty, DataType::Int)),
                    ct(ty, nullable),
                ))
            }
            "sqrt" | "ln" | "exp" => {
                let f = match name {
                    "sqrt" => UnaryFunc::Sqrt,
                    "ln" => UnaryFunc::Ln,
                    _ => UnaryFunc::Exp,
                };
                unary(f, DataType::Float, &mut bound, Some(DataType::Float))
            }
            "lower" | "upper" | "length" | "char_length" | "character_length" | "trim"
            | "btrim" | "ltrim" | "rtrim" | "reverse" => {
                let (f, ty) = match name {
                    "lower" => (UnaryFunc::Lower, DataType::Text),
                    "upper" => (UnaryFunc::Upper, DataType::Text),
                    "length" | "char_length" | "character_length" => {
                        (UnaryFunc::Length, DataType::Int)
                    }
                    "ltrim" => (UnaryFunc::LTrim, DataType::Text),
                    "rtrim" => (UnaryFunc::RTrim, DataType::Text),
                    "reverse" => (UnaryFunc::Reverse, DataType::Text),
                    _ => (UnaryFunc::Trim, DataType::Text),
                };
                unary(f, ty, &mut bound, Some(DataType::Text))
            }
            "power" | "pow" | "mod" => {
                if bound.len() != 2 {
                    return Err(arity_error());
                }
                let (y, yt) = bound.pop().expect("two");
                let (x, xt) = bound.pop().expect("two");
                if name == "mod" {
                    let ty = common_type(xt.ty, yt.ty).unwrap_or(DataType::Int);
                    return Ok((
                        coerce(x, xt.ty, ty).call_binary(BinaryFunc::Mod, coerce(y, yt.ty, ty)),
                        ct(ty, nullable),
                    ));
                }
                Ok((
                    coerce(x, xt.ty, DataType::Float)
                        .call_binary(BinaryFunc::Power, coerce(y, yt.ty, DataType::Float)),
                    ct(DataType::Float, nullable),
                ))
            }
            "left" | "right" | "strpos" | "repeat" => {
                if bound.len() != 2 {
                    return Err(arity_error());
                }
                let (y, yt) = bound.pop().expect("two");
                let (x, xt) = bound.pop().expect("two");
                let (f, yty, ty) = match name {
                    "left" => (BinaryFunc::Left, DataType::Int, DataType::Text),
                    "right" => (BinaryFunc::Right, DataType::Int, DataType::Text),
                    "repeat" => (BinaryFunc::Repeat, DataType::Int, DataType::Text),
                    _ => (BinaryFunc::StrPos, DataType::Text, DataType::Int),
                };
                Ok((
                    coerce(x, xt.ty, DataType::Text).call_binary(f, coerce(y, yt.ty, yty)),
                    ct(ty, nullable),
                ))
            }
            "substr" | "substring" | "replace" | "split_part" | "lpad" | "rpad" => {
                let (f, types): (VariadicFunc, &[DataType]) = match name {
                    "substr" | "substring" => (
                        VariadicFunc::Substr,
                        &[DataType::Text, DataType::Int, DataType::Int],
                    ),
                    "replace" => (
                        VariadicFunc::Replace,
                        &[DataType::Text, DataType::Text, DataType::Text],
                    ),
                    "split_part" => (
                        VariadicFunc::SplitPart,
                        &[DataType::Text, DataType::Text, DataType::Int],
                    ),
                    "lpad" => (
                        VariadicFunc::LPad,
                        &[DataType::Text, DataType::Int, DataType::Text],
                    ),
                    _ => (
                        VariadicFunc::RPad,
                        &[DataType::Text, DataType::Int, DataType::Text],
                    ),
                };
                let min = match f {
                    VariadicFunc::Substr | VariadicFunc::LPad | VariadicFunc::RPad => 2,
                    _ => 3,
                };
                if bound.len() < min || bound.len() > 3 {
                    return Err(arity_error());
                }
                let exprs = bound
                    .into_iter()
                    .zip(types)
                    .map(|((x, t), want)| coerce(x, t.ty, *want))
                    .collect();
                Ok((ScalarExpr::Variadic(f, exprs), ct(DataType::Text, nullable)))
            }
            "concat" => {
                let exprs = bound.into_iter().map(|(x, _)| x).collect();
                Ok((
                    ScalarExpr::Variadic(VariadicFunc::Concat, exprs),
                    ct(DataType::Text, false),
                ))
            }
            "coalesce" | "greatest" | "least" => {
                if bound.is_empty() {
                    return Err(arity_error());
                }
                let mut ty = DataType::Null;
                for (_, t) in &bound {
                    ty = common_type(ty, t.ty).ok_or_else(|| {
                        Error::plan(format!(
                            "{name} types {} and {} cannot be matched",
                            ty, t.ty
                        ))
                    })?;
                }
                let f = match name {
                    "coalesce" => VariadicFunc::Coalesce,
                    "greatest" => VariadicFunc::Greatest,
                    _ => VariadicFunc::Least,
                };
                let nullable = if name == "coalesce" {
                    bound.iter().all(|(_, t)| t.nullable)
                } else {
                    nullable
                };
                let exprs = bound
                    .into_iter()
                    .map(|(x, t)| coerce(x, t.ty, ty))
                    .collect();
                Ok((ScalarExpr::Variadic(f, exprs), ct(ty, nullable)))
            }
            "nullif" => {
                if bound.len() != 2 {
                    return Err(arity_error());
                }
                let (y, yt) = bound.pop().expect("two");
                let (x, xt) = bound.pop().expect("two");
                let ty = common_type(xt.ty, yt.ty)
                    .ok_or_else(|| Error::plan("nullif arguments cannot be matched"))?;
                let (x, y) = (coerce(x, xt.ty, ty), coerce(y, yt.ty, ty));
                Ok((
                    ScalarExpr::If {
                        cond: Box::new(x.clone().call_binary(BinaryFunc::Eq, y)),
                        then: Box::new(ScalarExpr::Literal(Value::Null)),
                        els: Box::new(x),
                    },
                    ct(ty, true),
                ))
            }
            "date_trunc" | "date_part" => {
                if bound.len() != 2 {
                    return Err(arity_error());
                }
                let (x, xt) = bound.pop().expect("two");
                let (unit, _) = bound.pop().expect("two");
                let ScalarExpr::Literal(Value::Text(unit)) = unit else {
                    return Err(Error::plan(format!(
                        "the first argument of {name} must be a string literal"
                    )));
                };
                let unit = unit.to_ascii_lowercase();
                if name == "date_trunc" {
                    Ok((
                        x.call_unary(UnaryFunc::DateTrunc(unit)),
                        ct(DataType::Timestamp, xt.nullable),
                    ))
                } else {
                    Ok((
                        x.call_unary(UnaryFunc::Extract(unit)),
                        ct(DataType::Float, xt.nullable),
                    ))
                }
            }
            "tumble" | "tumble_end" => {
                if bound.len() != 2 {
                    return Err(arity_error());
                }
                let (w, wt) = bound.pop().expect("two");
                let (x, xt) = bound.pop().expect("two");
                if wt.ty != DataType::Interval {
                    return Err(Error::plan(format!(
                        "the second argument of {name} must be an interval"
                    )));
                }
                let start = coerce(x, xt.ty, DataType::Timestamp)
                    .call_binary(BinaryFunc::Tumble, w.clone());
                let out = if name == "tumble_end" {
                    start.call_binary(BinaryFunc::WindowEnd, w)
                } else {
                    start
                };
                Ok((out, ct(DataType::Timestamp, nullable)))
            }
            "hop" | "hop_end" => Err(super::window::hop_outside_group_by(name)),
            _ if super::temporal::is_now_name(name) => Err(super::temporal::unsupported_now(
                "outside the WHERE clause of a query",
            )),
            other => Err(Error::plan(format!("function {other} does not exist"))),
        }
    }
}

fn expect_bool(ty: DataType, what: &str) -> Result<()> {
    match ty {
        DataType::Bool | DataType::Null => Ok(()),
        other => Err(Error::plan(format!(
            "argument of {what} must be type boolean, not type {other}"
        ))),
    }
}

/// A number literal (in parentheses, with a sign) as an exact numeric, if `e` is one.
fn numeric_literal(e: &Expr) -> Option<Value> {
    match e {
        Expr::Nested(inner) => numeric_literal(inner),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match numeric_literal(expr)? {
            Value::Numeric(d) => Some(Value::numeric(-d)),
            _ => None,
        },
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => crate::value::parse_numeric(n),
            _ => None,
        },
        _ => None,
    }
}

/// A SQL literal as a typed value.
pub fn literal(v: &ast::Value) -> Result<Bound> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => (ScalarExpr::Literal(Value::Int(i)), ct(DataType::Int, false)),
            Err(_) => {
                let f: f64 = n
                    .parse()
                    .map_err(|_| Error::plan(format!("invalid number {n}")))?;
                (
                    ScalarExpr::Literal(Value::float(f)),
                    ct(DataType::Float, false),
                )
            }
        },
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => (
            ScalarExpr::Literal(Value::text(s)),
            ct(DataType::Text, false),
        ),
        ast::Value::Boolean(b) => (
            ScalarExpr::Literal(Value::Bool(*b)),
            ct(DataType::Bool, false),
        ),
        ast::Value::Null => (ScalarExpr::Literal(Value::Null), ct(DataType::Null, true)),
        other => return Err(Error::unsupported(format!("literal {other}"))),
    })
}
