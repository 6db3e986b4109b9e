//! Why a label or a sheet cannot be made.

/// A label or sheet that cannot be rendered; messages name the value and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    /// The id cannot be printed as a Code 128 label (empty, too long, or a
    /// character outside printable ASCII).
    #[error("label text {text:?}: {rule}")]
    Text {
        /// The id.
        text: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The label is too small for the barcode (or text) at the configured dpi.
    #[error("{0}")]
    TooSmall(String),
    /// A `[labels]` setting makes no sense.
    #[error("key `labels.{key}` = {value}: {rule}")]
    Config {
        /// The key, without `labels.`.
        key: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// Nothing to render.
    #[error("no labels to render")]
    Empty,
    /// The PNG encoder failed (it writes to memory, so this is not expected).
    #[error("PNG encoding failed: {0}")]
    Png(String),
}
