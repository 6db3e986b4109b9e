//! Antenna grid codes (`CN002E03`), array layouts and the correlator kernel
//! index (spec sections 5.1 and 5.3).

use std::{fmt, str::FromStr};

use crate::error::{Error, Result};

/// The highest kernel index; the core layout maps 256 positions.
pub const KERNEL_MAX: u16 = 255;
/// The largest absolute row offset a grid code can hold.
pub const MAX_ROW_OFFSET: i32 = 999;
/// The largest east column a grid code can hold (columns start at 1).
pub const MAX_EAST_COL: u32 = 99;

const PATTERN: &str = "<array letter><N|C|S><3-digit offset>E<2-digit column 01-99>, e.g. CN002E03";

/// A grid position: array letter, signed row offset (north positive) and
/// 1-based east column. Displays as `<A><N|C|S><NNN>E<CC>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GridCode {
    array_id: char,
    row_offset: i32,
    east_col: u32,
}

fn grid_err(code: &str, rule: &str) -> Error {
    Error::invalid(format!("grid code {code:?}: {rule}"))
}

impl GridCode {
    /// Parses a grid code, trimmed and upper-cased first (`cn021e01` is
    /// accepted). `C` rows must use offset 000, `N`/`S` rows 001-999, and
    /// columns are 01-99.
    pub fn parse(input: &str) -> Result<GridCode> {
        let s = input.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        let shape = b.len() == 8
            && b[0].is_ascii_uppercase()
            && b[1].is_ascii_uppercase()
            && b[2..5].iter().all(u8::is_ascii_digit)
            && b[5] == b'E'
            && b[6..8].iter().all(u8::is_ascii_digit);
        if !shape {
            return Err(grid_err(input, &format!("does not match pattern {PATTERN}")));
        }
        let offset: u32 = s[2..5].parse().map_err(|_| grid_err(input, "bad offset"))?;
        let col: u32 = s[6..8].parse().map_err(|_| grid_err(input, "bad column"))?;
        GridCode::from_direction(char::from(b[0]), char::from(b[1]), offset, col)
            .map_err(|e| grid_err(input, e.to_string().split_once(": ").map_or("", |(_, r)| r)))
    }

    /// The code of `array_id`, direction `N`/`C`/`S`, unsigned `offset` and
    /// 1-based column `east_col` (e.g. `('C', 'N', 2, 3)` = `CN002E03`).
    pub fn from_direction(array_id: char, direction: char, offset: u32, east_col: u32) -> Result<GridCode> {
        let shown = format!("{array_id}{direction}{offset:03}E{east_col:02}");
        let offset = i32::try_from(offset).unwrap_or(i32::MAX);
        let array_id = array_id.to_ascii_uppercase();
        if !array_id.is_ascii_uppercase() {
            return Err(grid_err(&shown, "the array id must be one letter A-Z"));
        }
        let row_offset = match direction.to_ascii_uppercase() {
            'C' if offset == 0 => 0,
            'C' => return Err(grid_err(&shown, "Center row must use offset 000")),
            'N' | 'S' if offset == 0 => {
                return Err(grid_err(
                    &shown,
                    "N and S rows must use offset 001-999 (the center row is C000)",
                ));
            }
            'N' => offset,
            'S' => -offset,
            _ => return Err(grid_err(&shown, "direction must be N, C or S")),
        };
        GridCode::new(array_id, row_offset, east_col)
            .map_err(|e| grid_err(&shown, e.to_string().split_once(": ").map_or("", |(_, r)| r)))
    }

    /// The code of `array_id`, signed row offset (north positive, 0 = center)
    /// and 1-based column: `('C', 0, 1)` = `CC000E01`, `('C', -10, 2)` = `CS010E02`.
    pub fn new(array_id: char, row_offset: i32, east_col: u32) -> Result<GridCode> {
        let array_id = array_id.to_ascii_uppercase();
        let shown = format!("{array_id}{row_offset:+}E{east_col:02}");
        if !array_id.is_ascii_uppercase() {
            return Err(grid_err(&shown, "the array id must be one letter A-Z"));
        }
        if row_offset.abs() > MAX_ROW_OFFSET {
            return Err(grid_err(&shown, "row offset must be within -999..999"));
        }
        if !(1..=MAX_EAST_COL).contains(&east_col) {
            return Err(grid_err(&shown, "column must be 01-99 (columns are 1-based)"));
        }
        Ok(GridCode { array_id, row_offset, east_col })
    }

    /// The array letter, e.g. `C`.
    pub fn array_id(self) -> char {
        self.array_id
    }

    /// The signed row offset: north positive, south negative, center 0.
    pub fn row_offset(self) -> i32 {
        self.row_offset
    }

    /// The 1-based east column.
    pub fn east_col(self) -> u32 {
        self.east_col
    }

    /// The direction letter `N`, `C` or `S`.
    pub fn direction(self) -> char {
        match self.row_offset {
            0 => 'C',
            r if r > 0 => 'N',
            _ => 'S',
        }
    }

    /// The row part of the code, `N021`, `C000`, `S005`.
    pub fn row_label(self) -> String {
        format!("{}{:03}", self.direction(), self.row_offset.abs())
    }
}

impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}E{:02}", self.array_id, self.row_label(), self.east_col)
    }
}

impl FromStr for GridCode {
    type Err = Error;

    fn from_str(s: &str) -> Result<GridCode> {
        GridCode::parse(s)
    }
}

/// One configured array (`grid.<name>` in CAsMan's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridLayout {
    /// The configuration name, e.g. `core`.
    pub name: String,
    /// The array letter of its codes, e.g. `C`.
    pub array_id: char,
    /// Rows north of the center row.
    pub north_rows: u32,
    /// Rows south of the center row.
    pub south_rows: u32,
    /// Columns: `E01` up to `E<east_columns>`.
    pub east_columns: u32,
    /// Whether codes outside the rows/columns above are allowed (only the
    /// absolute limits ±999 and 1..99 then apply).
    pub allow_expansion: bool,
}

impl GridLayout {
    /// The core array: `C`, 21 rows north, 21 south, 6 columns, expansion allowed.
    pub fn core() -> GridLayout {
        GridLayout {
            name: "core".into(),
            array_id: 'C',
            north_rows: 21,
            south_rows: 21,
            east_columns: 6,
            allow_expansion: true,
        }
    }

    /// The layout named `name` among `layouts`.
    pub fn by_name<'a>(layouts: &'a [GridLayout], name: &str) -> Result<&'a GridLayout> {
        layouts
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::NotFound(format!("array {name:?} not found in configuration")))
    }

    /// The layout whose array letter is `array_id` among `layouts`, if any.
    pub fn by_array_id(layouts: &[GridLayout], array_id: char) -> Option<&GridLayout> {
        layouts.iter().find(|l| l.array_id == array_id.to_ascii_uppercase())
    }

    /// Checks `code` against the layout of its array among `layouts`; codes of
    /// arrays not configured are accepted (no bounds known).
    pub fn validate_in(layouts: &[GridLayout], code: GridCode) -> Result<()> {
        match GridLayout::by_array_id(layouts, code.array_id) {
            Some(layout) => layout.validate(code),
            None => Ok(()),
        }
    }

    /// Checks that `code` belongs to this array and, unless expansion is
    /// allowed, lies within its rows and columns.
    pub fn validate(&self, code: GridCode) -> Result<()> {
        if code.array_id != self.array_id {
            return Err(Error::invalid(format!(
                "grid code \"{code}\": array {} is not array {} ({})",
                code.array_id, self.array_id, self.name
            )));
        }
        if self.allow_expansion || self.contains(code) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "grid code \"{code}\": outside array {} ({}), whose rows are S{:03}..N{:03} and columns \
             E01..E{:02}, and expansion is not allowed",
            self.array_id, self.name, self.south_rows, self.north_rows, self.east_columns
        )))
    }

    /// Whether `code` is one of this layout's own positions (expansion ignored).
    pub fn contains(&self, code: GridCode) -> bool {
        code.array_id == self.array_id
            && i64::from(code.row_offset) <= i64::from(self.north_rows)
            && -i64::from(code.row_offset) <= i64::from(self.south_rows)
            && (1..=self.east_columns).contains(&code.east_col)
    }

    /// Row offsets in display order: north to south (N021 … C000 … S021).
    pub fn rows(&self) -> impl Iterator<Item = i32> + use<> {
        let north = i32::try_from(self.north_rows).map_or(MAX_ROW_OFFSET, |n| n.min(MAX_ROW_OFFSET));
        let south = i32::try_from(self.south_rows).map_or(MAX_ROW_OFFSET, |n| n.min(MAX_ROW_OFFSET));
        (-south..=north).rev()
    }

    /// All positions in display order: rows north to south, each from E01 eastwards.
    pub fn positions(&self) -> impl Iterator<Item = GridCode> + use<> {
        let array_id = self.array_id;
        let cols = self.east_columns.min(MAX_EAST_COL);
        self.rows().flat_map(move |row_offset| {
            (1..=cols).map(move |east_col| GridCode { array_id, row_offset, east_col })
        })
    }

    /// The kernel (correlator) index of `code`: row index r (0 = northernmost)
    /// × columns + (column − 1), defined for this layout's positions while ≤ 255.
    pub fn kernel_index(&self, code: GridCode) -> Option<u16> {
        if !self.contains(code) {
            return None;
        }
        let r = i64::from(self.north_rows) - i64::from(code.row_offset);
        let k = r * i64::from(self.east_columns) + i64::from(code.east_col) - 1;
        u16::try_from(k).ok().filter(|k| *k <= KERNEL_MAX)
    }

    /// The position of kernel index `k` (0-255), the inverse of [`kernel_index`](Self::kernel_index).
    pub fn code_for_kernel(&self, k: i64) -> Option<GridCode> {
        if !(0..=i64::from(KERNEL_MAX)).contains(&k) || self.east_columns == 0 {
            return None;
        }
        let cols = i64::from(self.east_columns);
        let row_offset = i64::from(self.north_rows) - k / cols;
        let code = GridCode {
            array_id: self.array_id,
            row_offset: i32::try_from(row_offset).ok()?,
            east_col: u32::try_from(k % cols + 1).ok()?,
        };
        self.contains(code).then_some(code)
    }
}

/// The kernel index of `code` in the core layout (`CN021E01` = 0, `CC000E01` = 126,
/// `CS021E04` = 255; `CS021E05`/`E06` and codes outside the core have none).
pub fn kernel_index(code: GridCode) -> Option<u16> {
    GridLayout::core().kernel_index(code)
}

/// The core position of kernel index `k`; `None` outside 0-255.
pub fn grid_for_kernel(k: i64) -> Option<GridCode> {
    GridLayout::core().code_for_kernel(k)
}

#[cfg(test)]
#[path = "grid_tests.rs"]
mod tests;
