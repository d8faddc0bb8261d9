//! Heat cells: the floor-map points counted per map, hour and square cell of
//! [`HEAT_CELL`] map units, kept as the points are written (migration V5), so a heat map
//! reads cells, not every point. Pure: the binning both the writer and the queries use.

use std::collections::HashMap;

/// The side of a heat cell, map units (a quarter of a metre on a map in metres: the
/// heat map's default cell; its cells are multiples of it).
pub const HEAT_CELL: f64 = 0.25;
/// The time bucket of the heat cells.
pub const HOUR_MS: i64 = 3_600_000;

/// The start of the hour of `t_ms` (UTC; saturating at the ends of i64).
pub fn hour_of(t_ms: i64) -> i64 {
    let h = i128::from(t_ms).div_euclid(i128::from(HOUR_MS)) * i128::from(HOUR_MS);
    h.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The cell of a point (column, row of [`HEAT_CELL`] cells from the map's origin); None
/// for a coordinate that is not a finite number.
pub fn cell_of(x: f64, y: f64) -> Option<(i64, i64)> {
    if !(x.is_finite() && y.is_finite()) {
        return None;
    }
    Some((
        (x / HEAT_CELL).floor() as i64,
        (y / HEAT_CELL).floor() as i64,
    ))
}

/// Time ranges `[from, to)` of points.
pub type Spans = Vec<(i64, i64)>;

/// How a heat map counts the window `[from, to)`: the points of `plus` added to, and those of
/// `minus` taken from, the heat cells of the hours `[lo, hi)` (None: no hour's cells). An
/// hour the window covers comes from its cells; one it cuts, from the points of the part it
/// covers when that is at most half the hour, else from its cells less the points of the
/// rest — so at most half an hour of points is read at each end.
pub fn split_window(from: i64, to: i64) -> (Spans, Spans, Option<(i64, i64)>) {
    let (mut plus, mut minus) = (Vec::new(), Vec::new());
    if from >= to {
        return (plus, minus, None);
    }
    let (first, last) = (hour_of(from), hour_of(to - 1));
    // Whether each end hour is read from its cells.
    let mut cells = |h: i64| {
        let end = h.saturating_add(HOUR_MS);
        let (a, b) = (from.max(h), to.min(end));
        if a == h && b == end {
            return true;
        }
        if b - a <= HOUR_MS / 2 {
            plus.push((a, b));
            false
        } else {
            minus.extend([(h, a), (b, end)].into_iter().filter(|(x, y)| x < y));
            true
        }
    };
    let first_cells = cells(first);
    let last_cells = if last == first {
        first_cells
    } else {
        cells(last)
    };
    let lo = if first_cells {
        first
    } else {
        first.saturating_add(HOUR_MS)
    };
    let hi = if last_cells {
        last.saturating_add(HOUR_MS)
    } else {
        last
    };
    (plus, minus, (lo < hi).then_some((lo, hi)))
}

/// Counts to add to (or, negative, take from) the heat cells: (map, hour, column, row) → n.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cells(pub HashMap<(String, i64, i64, i64), i64>);

impl Cells {
    /// Counts `n` points at (`x`, `y`) of `map` at `t_ms`.
    pub fn add(&mut self, map: &str, t_ms: i64, x: f64, y: f64, n: i64) {
        let Some((cx, cy)) = cell_of(x, y) else {
            return;
        };
        let key = (map.to_string(), hour_of(t_ms), cx, cy);
        *self.0.entry(key).or_insert(0) += n;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reads_whole_hours_from_cells_and_at_most_half_an_hour_of_points_at_each_end() {
        let (h, m) = (HOUR_MS, 60_000);
        assert_eq!(split_window(0, 3 * h), (vec![], vec![], Some((0, 3 * h))));
        // Cut ends: 10 minutes read; 50 minutes covered: the hour less 10 minutes.
        assert_eq!(
            split_window(50 * m, 2 * h + 50 * m),
            (
                vec![(50 * m, h)],
                vec![(2 * h + 50 * m, 3 * h)],
                Some((h, 3 * h))
            )
        );
        // Within one hour.
        assert_eq!(
            split_window(10 * m, 40 * m),
            (vec![(10 * m, 40 * m)], vec![], None)
        );
        assert_eq!(
            split_window(5 * m, 50 * m),
            (vec![], vec![(0, 5 * m), (50 * m, h)], Some((0, h)))
        );
        assert_eq!(split_window(5, 5), (vec![], vec![], None));
        let (plus, minus, hours) = split_window(i64::MIN, i64::MAX);
        assert!(hours.is_some() && plus.len() + minus.len() <= 2);
    }

    #[test]
    fn points_fall_in_hours_and_quarter_cells_on_both_sides_of_zero() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(-1), -HOUR_MS);
        assert_eq!(hour_of(i64::MIN), i64::MIN, "saturates");
        assert_eq!(cell_of(0.0, 0.24), Some((0, 0)));
        assert_eq!(cell_of(0.25, 0.5), Some((1, 2)));
        assert_eq!(cell_of(-0.01, -0.25), Some((-1, -1)));
        assert_eq!(cell_of(f64::NAN, 0.0), None);
        let mut c = Cells::default();
        c.add("shop", 10, 1.1, 1.1, 1);
        c.add("shop", 20, 1.2, 1.0, 1);
        c.add("shop", HOUR_MS, 1.2, 1.0, 1);
        c.add("shop", 20, 1.2, 1.0, -1);
        assert_eq!(c.0[&("shop".into(), 0, 4, 4)], 1);
        assert_eq!(c.0[&("shop".into(), HOUR_MS, 4, 4)], 1);
        assert_eq!(c.0.len(), 2);
    }
}
