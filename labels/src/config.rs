//! The `[labels]` section of casmand's configuration.

use serde::{Deserialize, Serialize};

use crate::LabelError;

/// Label sizes, resolution and sheet layout. Every key and its default is
/// documented in `config/casmand.toml`; the defaults are CAsMan's
/// (`barcode:` in its config.yaml).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Resolution of PNG labels and of the pixel grid every bar is aligned to.
    pub dpi: u32,
    /// Width of a label (every type but coax), inches.
    pub width_inches: f64,
    /// Height of a label, inches.
    pub height_inches: f64,
    /// Width of a coax label (COAXSHORT, COAXLONG), inches.
    pub coax_width_inches: f64,
    /// Height of a coax label, inches.
    pub coax_height_inches: f64,
    /// Coax labels carry a barcode; `false` prints CAsMan's text-only coax
    /// label instead: the id repeated to wrap around the cable.
    pub coax_use_barcode: bool,
    /// Outer diameter of the COAXSHORT cable (LMR-95), inches: a text-only
    /// label repeats the id ⌊height / (0.9 × diameter)⌋ times.
    pub coaxshort_diameter_inches: f64,
    /// Outer diameter of the COAXLONG cable (LMR-195), inches.
    pub coaxlong_diameter_inches: f64,
    /// Paper of PDF sheets: `letter` (8.5 × 11 in) or `a4`.
    pub page_size: PageSize,
    /// Labels per row of a sheet.
    pub columns: u32,
    /// Page margin on every side, inches.
    pub margin_inches: f64,
    /// Space between labels of a row, inches.
    pub horizontal_gap_inches: f64,
    /// Space between rows, inches.
    pub vertical_gap_inches: f64,
    /// `separate`: P1 and P2 labels on separate sheets (CAsMan); `interleaved`:
    /// P1 and P2 of each number side by side, in number order.
    pub polarizations: PolarizationLayout,
}

/// Paper size of a sheet.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PageSize {
    /// US Letter, 8.5 × 11 in.
    Letter,
    /// ISO A4, 210 × 297 mm.
    A4,
}

impl PageSize {
    /// Width and height in inches.
    pub fn inches(self) -> (f64, f64) {
        match self {
            PageSize::Letter => (8.5, 11.0),
            PageSize::A4 => (210.0 / 25.4, 297.0 / 25.4),
        }
    }
}

/// How P1 and P2 labels of a range share sheets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PolarizationLayout {
    /// Each polarization on its own sheets (CAsMan: one PDF per polarization).
    Separate,
    /// `ANT00001P1, ANT00001P2, ANT00002P1, ...` on the same sheets.
    Interleaved,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        LabelsConfig {
            dpi: 300,
            width_inches: 1.2,
            height_inches: 0.75,
            coax_width_inches: 1.0,
            coax_height_inches: 0.34,
            coax_use_barcode: true,
            coaxshort_diameter_inches: 0.141,
            coaxlong_diameter_inches: 0.233,
            page_size: PageSize::Letter,
            columns: 3,
            margin_inches: 0.5,
            horizontal_gap_inches: 0.25,
            vertical_gap_inches: 0.25,
            polarizations: PolarizationLayout::Separate,
        }
    }
}

impl LabelsConfig {
    /// Checks values that parse but make no sense: a resolution outside
    /// 72-2400 dpi, sizes that are not positive, labels wider or taller than
    /// the page, columns that do not fit between the margins.
    pub fn validate(&self) -> Result<(), LabelError> {
        let bad = |key: &'static str, value: String, rule: &str| {
            Err(LabelError::Config { key, value, rule: rule.to_owned() })
        };
        if !(72..=2400).contains(&self.dpi) {
            return bad("dpi", self.dpi.to_string(), "must be 72-2400");
        }
        let (page_w, page_h) = self.page_size.inches();
        let positive = [
            ("width_inches", self.width_inches),
            ("height_inches", self.height_inches),
            ("coax_width_inches", self.coax_width_inches),
            ("coax_height_inches", self.coax_height_inches),
            ("coaxshort_diameter_inches", self.coaxshort_diameter_inches),
            ("coaxlong_diameter_inches", self.coaxlong_diameter_inches),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0 && v <= page_w.max(page_h)) {
                return bad(key, v.to_string(), "must be a positive size no larger than the page");
            }
        }
        for (key, v) in [
            ("margin_inches", self.margin_inches),
            ("horizontal_gap_inches", self.horizontal_gap_inches),
            ("vertical_gap_inches", self.vertical_gap_inches),
        ] {
            if !(v.is_finite() && v >= 0.0 && v < page_w.min(page_h) / 2.0) {
                return bad(key, v.to_string(), "must be 0 or more and less than half the page");
            }
        }
        if self.columns == 0 {
            return bad("columns", "0".into(), "must be at least 1");
        }
        let widest = self.width_inches.max(self.coax_width_inches);
        let tallest = self.height_inches.max(self.coax_height_inches);
        let row = f64::from(self.columns) * widest + f64::from(self.columns - 1) * self.horizontal_gap_inches;
        let room_w = page_w - 2.0 * self.margin_inches;
        if row > room_w + 1e-9 {
            return bad(
                "columns",
                self.columns.to_string(),
                &format!(
                    "{} labels of {widest} in with {} in gaps need {row:.3} in, but the page has {room_w:.3} in \
                     between its margins",
                    self.columns, self.horizontal_gap_inches
                ),
            );
        }
        if tallest > page_h - 2.0 * self.margin_inches + 1e-9 {
            return bad(
                "height_inches",
                tallest.to_string(),
                "a label must fit between the top and bottom margins",
            );
        }
        Ok(())
    }

    /// Pixels of `inches` at the configured dpi (rounded).
    pub fn px(&self, inches: f64) -> u32 {
        (inches * f64::from(self.dpi)).round().max(1.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_cas_man_sized() {
        let c = LabelsConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.px(c.width_inches), c.px(c.height_inches)), (360, 225));
        assert_eq!((c.px(c.coax_width_inches), c.px(c.coax_height_inches)), (300, 102));
    }

    #[test]
    fn too_many_columns_are_named() {
        let c = LabelsConfig { columns: 7, ..LabelsConfig::default() };
        let err = c.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("key `labels.columns` = 7:"), "{err}");
        let c = LabelsConfig { dpi: 10, ..LabelsConfig::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn keys_parse_from_toml_names() {
        let c: LabelsConfig =
            toml::from_str("page_size = \"a4\"\npolarizations = \"interleaved\"\ncolumns = 2")
                .unwrap_or_default();
        assert_eq!(c.page_size, PageSize::A4);
        assert_eq!(c.polarizations, PolarizationLayout::Interleaved);
        assert_eq!(c.columns, 2);
    }
}
