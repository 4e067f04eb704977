//! DISTINCT and the thresholds behind EXCEPT and INTERSECT.

use super::{RenderTime, Rows};

/// Each row once if its multiplicity is positive.
pub fn distinct<'s, T: RenderTime>(rows: Rows<'s, T>) -> Rows<'s, T> {
    distinct_placed(rows, false)
}

/// [`distinct`]; with `placed`, the rows already lie where their first column places them
/// (`plan::placement`) and are made distinct there.
pub fn distinct_placed<'s, T: RenderTime>(rows: Rows<'s, T>, placed: bool) -> Rows<'s, T> {
    T::threshold_rows(rows, |_row, m| if *m > 0 { 1 } else { 0 }, placed)
}

/// Each row with its multiplicity, or not at all if that is negative.
pub fn clamp_negative<'s, T: RenderTime>(rows: Rows<'s, T>) -> Rows<'s, T> {
    T::threshold_rows(rows, |_row, m| if *m > 0 { *m } else { 0 }, false)
}
