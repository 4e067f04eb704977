//! Name resolution: which column a (possibly qualified) identifier means.

use crate::error::{Error, Result};
use crate::expr::ColumnType;
use crate::value::DataType;

/// One column visible to expressions.
#[derive(Clone, Debug)]
pub struct ScopeColumn {
    /// The table name or alias that qualifies this column.
    pub table: Option<String>,
    pub name: String,
    pub ty: DataType,
    pub nullable: bool,
    /// Hidden from unqualified lookups (the right side of `USING`).
    pub hidden: bool,
}

/// The columns a FROM clause makes visible, in row order.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
}

impl Scope {
    pub fn new(
        table: Option<&str>,
        cols: impl IntoIterator<Item = (String, DataType, bool)>,
    ) -> Scope {
        Scope {
            columns: cols
                .into_iter()
                .map(|(name, ty, nullable)| ScopeColumn {
                    table: table.map(str::to_string),
                    name,
                    ty,
                    nullable,
                    hidden: false,
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The concatenation of two scopes (a join's).
    pub fn join(&self, other: &Scope) -> Scope {
        let mut columns = self.columns.clone();
        columns.extend(other.columns.iter().cloned());
        Scope { columns }
    }

    /// Marks every column nullable (the padded side of an outer join).
    pub fn nullable(mut self) -> Scope {
        for c in &mut self.columns {
            c.nullable = true;
        }
        self
    }

    pub fn column_type(&self, i: usize) -> ColumnType {
        ColumnType {
            ty: self.columns[i].ty,
            nullable: self.columns[i].nullable,
        }
    }

    /// Resolves `name` or `table.name` (names as [`super::ident`] gives them: exact match).
    pub fn resolve(&self, table: Option<&str>, name: &str) -> Result<usize> {
        let matches: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.name == name
                    && match table {
                        Some(t) => c.table.as_deref().is_some_and(|ct| ct == t),
                        None => !c.hidden,
                    }
            })
            .map(|(i, _)| i)
            .collect();
        let shown = match table {
            Some(t) => format!("{t}.{name}"),
            None => name.to_string(),
        };
        match matches.len() {
            1 => Ok(matches[0]),
            0 => {
                if let Some(t) = table {
                    if !self
                        .columns
                        .iter()
                        .any(|c| c.table.as_deref().is_some_and(|ct| ct == t))
                    {
                        return Err(Error::plan(format!(
                            "missing FROM-clause entry for table \"{t}\""
                        )));
                    }
                }
                Err(Error::plan(format!("column \"{shown}\" does not exist")))
            }
            _ => Err(Error::plan(format!(
                "column reference \"{shown}\" is ambiguous"
            ))),
        }
    }

    /// Whether any column is qualified by `table`.
    pub fn has_table(&self, table: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.table.as_deref().is_some_and(|t| t == table))
    }
}
