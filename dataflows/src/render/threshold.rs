//! DISTINCT and the thresholds behind EXCEPT and INTERSECT.

use super::{RenderTime, Rows};

/// Each row once if its multiplicity is positive.
pub fn distinct<'s, T: RenderTime>(rows: Rows<'s, T>) -> Rows<'s, T> {
    T::threshold_rows(rows, |_row, m| if *m > 0 { 1 } else { 0 })
}

/// Each row with its multiplicity, or not at all if that is negative.
pub fn clamp_negative<'s, T: RenderTime>(rows: Rows<'s, T>) -> Rows<'s, T> {
    T::threshold_rows(rows, |_row, m| if *m > 0 { *m } else { 0 })
}
