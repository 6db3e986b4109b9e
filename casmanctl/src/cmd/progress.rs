//! A progress bar for long transfers, shown on stderr only when it is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that does nothing when output is not for a person.
#[derive(Debug)]
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar, drawn only if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Bar {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        Bar { bar }
    }

    /// Shows `what` at `done` of `total` bytes (total 0 = unknown).
    pub fn update(&mut self, what: &str, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_message(what.to_owned());
            b.set_length(total.max(done));
            b.set_position(done);
        }
    }

    /// Removes the bar from the screen.
    pub fn clear(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
