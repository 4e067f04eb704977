//! `EXPLAIN`: the plan as an indented tree, one operator per line.

use std::fmt::{self, Write};

use super::mfp::MfpStep;
use super::top_k::RankKind;
use super::{JoinKind, Plan};

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// Renders the plan; `names` maps catalog ids to names.
    pub fn explain(&self, names: &dyn Fn(u64) -> String) -> String {
        let mut out = String::new();
        self.explain_into(&mut out, 0, names)
            .expect("writing to a String");
        out
    }

    fn explain_into(
        &self,
        out: &mut String,
        depth: usize,
        names: &dyn Fn(u64) -> String,
    ) -> fmt::Result {
        let pad = "  ".repeat(depth);
        match self {
            Plan::Get { id, .. } => writeln!(out, "{pad}Get {}", names(*id))?,
            Plan::LocalGet { id, .. } => writeln!(out, "{pad}Get recursive#{id}")?,
            Plan::Constant { rows, .. } => writeln!(out, "{pad}Constant ({} rows)", rows.len())?,
            Plan::Map { input, exprs } => {
                writeln!(out, "{pad}Map ({})", list(exprs))?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Filter { input, predicates } => {
                writeln!(out, "{pad}Filter ({})", list(predicates))?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Project { input, cols } => {
                writeln!(
                    out,
                    "{pad}Project ({})",
                    cols.iter()
                        .map(|c| format!("#{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Mfp { input, mfp } => {
                let steps: Vec<String> = mfp
                    .steps
                    .iter()
                    .map(|s| match s {
                        MfpStep::Map(e) => format!("map {e}"),
                        MfpStep::Filter(p) => format!("filter {p}"),
                    })
                    .collect();
                let proj: Vec<String> = mfp.project.iter().map(|c| format!("#{c}")).collect();
                if steps.is_empty() {
                    writeln!(out, "{pad}Project ({})", proj.join(", "))?;
                } else {
                    writeln!(
                        out,
                        "{pad}MapFilterProject [{}] project ({})",
                        steps.join("; "),
                        proj.join(", ")
                    )?;
                }
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Join(j) => {
                let kind = match j.kind {
                    JoinKind::Inner => "Inner",
                    JoinKind::Left => "LeftOuter",
                    JoinKind::Right => "RightOuter",
                    JoinKind::Full => "FullOuter",
                };
                if j.left_key.is_empty() {
                    write!(out, "{pad}{kind}Join cross")?;
                } else {
                    write!(
                        out,
                        "{pad}{kind}Join arrange left by ({}) right by ({})",
                        list(&j.left_key),
                        list(&j.right_key)
                    )?;
                }
                if !j.residual.is_empty() {
                    write!(out, " residual ({})", list(&j.residual))?;
                }
                writeln!(out)?;
                j.left.explain_into(out, depth + 1, names)?;
                j.right.explain_into(out, depth + 1, names)?;
            }
            Plan::Reduce(r) => {
                let aggs: Vec<String> = r
                    .aggregates
                    .iter()
                    .map(|a| {
                        let mut extra: Vec<String> =
                            a.extra.iter().map(|e| e.to_string()).collect();
                        for k in &a.order {
                            let e = &mut extra[k.column];
                            *e = format!("ORDER BY {e}{}", if k.desc { " DESC" } else { "" });
                        }
                        format!(
                            "{:?}({}{}{})",
                            a.func,
                            if a.distinct { "DISTINCT " } else { "" },
                            a.expr,
                            extra.iter().map(|e| format!(", {e}")).collect::<String>()
                        )
                    })
                    .collect();
                writeln!(
                    out,
                    "{pad}Reduce key ({}) aggregates ({}){}",
                    list(&r.key),
                    aggs.join(", "),
                    if r.global { " global" } else { "" }
                )?;
                r.input.explain_into(out, depth + 1, names)?;
            }
            Plan::FlatMap(f) => {
                writeln!(out, "{pad}FlatMap {}", f.func)?;
                f.input.explain_into(out, depth + 1, names)?;
            }
            Plan::TemporalFilter(t) => {
                writeln!(out, "{pad}TemporalFilter ({})", list(&t.bounds))?;
                t.input.explain_into(out, depth + 1, names)?;
            }
            Plan::Distinct { input } => {
                writeln!(out, "{pad}Distinct")?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Union { inputs } => {
                writeln!(out, "{pad}Union")?;
                for i in inputs {
                    i.explain_into(out, depth + 1, names)?;
                }
            }
            Plan::Negate { input } => {
                writeln!(out, "{pad}Negate")?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::Threshold { input } => {
                writeln!(out, "{pad}Threshold")?;
                input.explain_into(out, depth + 1, names)?;
            }
            Plan::TopK(t) => {
                let order: Vec<String> = t
                    .order
                    .iter()
                    .map(|k| format!("#{}{}", k.column, if k.desc { " desc" } else { "" }))
                    .collect();
                let what = match t.rank {
                    Some(
                        k @ (RankKind::Lag {
                            value,
                            offset,
                            default,
                        }
                        | RankKind::Lead {
                            value,
                            offset,
                            default,
                        }),
                    ) => {
                        let default = default.map(|d| format!(", #{d}")).unwrap_or_default();
                        format!("Window {}(#{value}, {offset}{default})", k.name())
                    }
                    Some(RankKind::Window {
                        func, value, frame, ..
                    }) => {
                        let arg = match func {
                            crate::plan::top_k::FrameFunc::CountStar => "*".to_string(),
                            crate::plan::top_k::FrameFunc::NthValue(n) => format!("#{value}, {n}"),
                            crate::plan::top_k::FrameFunc::StringAgg { delimiter } => {
                                format!("#{value}, #{delimiter}")
                            }
                            _ => format!("#{value}"),
                        };
                        let frame = match frame == crate::plan::top_k::Frame::DEFAULT {
                            true => String::new(),
                            false => format!(" {frame}"),
                        };
                        format!("Window {}({arg}){frame}", func.name())
                    }
                    Some(k) => format!("Rank {}", k.name()),
                    None => "TopK".to_string(),
                };
                writeln!(
                    out,
                    "{pad}{what} group ({}) order ({}) limit {} offset {}",
                    t.group_key
                        .iter()
                        .map(|c| format!("#{c}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    order.join(", "),
                    t.limit
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "none".into()),
                    t.offset
                )?;
                t.input.explain_into(out, depth + 1, names)?;
            }
            Plan::LetRec {
                id,
                base,
                step,
                distinct,
                body,
            } => {
                writeln!(
                    out,
                    "{pad}LetRec recursive#{id}{}",
                    if *distinct { " distinct" } else { "" }
                )?;
                writeln!(out, "{pad}  base:")?;
                base.explain_into(out, depth + 2, names)?;
                writeln!(out, "{pad}  step:")?;
                step.explain_into(out, depth + 2, names)?;
                writeln!(out, "{pad}  in:")?;
                body.explain_into(out, depth + 2, names)?;
            }
        }
        Ok(())
    }
}
