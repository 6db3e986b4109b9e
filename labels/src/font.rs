//! The label font for raster output: the X11 10×20 fixed font shipped by
//! `embedded-graphics`, magnified by whole pixels (vector formats name a
//! monospaced font of the same advance instead).

use std::convert::Infallible;

use embedded_graphics::{
    mono_font::{MonoTextStyle, ascii::FONT_10X20},
    pixelcolor::BinaryColor,
    prelude::*,
    text::{Baseline, Text},
};

/// Width of a character cell at scale 1, px.
pub const CELL_W: u32 = 10;
/// Height of a character cell at scale 1, px.
pub const CELL_H: u32 = 20;
/// Baseline below the top of a cell at scale 1, px.
pub const BASELINE: u32 = 16;

/// An 8-bit grey image (0 = black, 255 = white) text is drawn onto.
struct Canvas<'a> {
    px: &'a mut [u8],
    width: u32,
    height: u32,
    x: u32,
    y: u32,
    scale: u32,
}

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.width / self.scale.max(1), self.height / self.scale.max(1))
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(&mut self, pixels: I) -> Result<(), Infallible> {
        for Pixel(p, c) in pixels {
            if c != BinaryColor::On || p.x < 0 || p.y < 0 {
                continue;
            }
            let (x0, y0) = (self.x + p.x as u32 * self.scale, self.y + p.y as u32 * self.scale);
            for y in y0..(y0 + self.scale).min(self.height) {
                for x in x0..(x0 + self.scale).min(self.width) {
                    self.px[(y * self.width + x) as usize] = 0;
                }
            }
        }
        Ok(())
    }
}

/// Draws `text` in black with the top-left of its first cell at (`x`, `y`).
pub fn draw(px: &mut [u8], width: u32, height: u32, x: u32, y: u32, scale: u32, text: &str) {
    let mut canvas = Canvas { px, width, height, x, y, scale: scale.max(1) };
    let style = MonoTextStyle::new(&FONT_10X20, BinaryColor::On);
    // Drawing into memory cannot fail (the error type is Infallible).
    let _ = Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut canvas);
}
