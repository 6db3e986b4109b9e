//! casman's part labels: Code 128 barcodes of part numbers and SNAP port ids
//! with the human-readable id beneath, as PNG or SVG images of one label, and
//! PDF sheets of many labels for US Letter or A4 label stock.
//!
//! Pure: no I/O, no gRPC, no database. The caller chooses the ids and the
//! label [`Stock`]; the [`LabelsConfig`] (casmand's `[labels]` section) gives
//! sizes, resolution and page layout. Defaults are CAsMan's: 1.2 × 0.75 in
//! labels (coax 1.0 × 0.34 in) at 300 dpi, i.e. 360 × 225 px (300 × 102 px),
//! on US Letter, 3 per row, 0.5 in margins, 0.25 in gaps.
//!
//! Every bar is a whole number of pixels at the configured dpi, the narrowest
//! at least [`MIN_MODULE_PX`], so printed labels read on ordinary hand-held
//! scanners; the same geometry is drawn in every format.

mod code128;
mod config;
mod error;
mod font;
mod layout;
mod pdf;
mod png_out;
mod svg;

pub use config::{LabelsConfig, PageSize, PolarizationLayout};
pub use error::LabelError;
pub use layout::{Bar, Geometry, MIN_MODULE_PX, Stock, TextLine, layout};
pub use pdf::{Sheet, SheetLabel, sheet_pdf};
pub use png_out::label_png;
pub use svg::label_svg;
