//! One label as a PNG image (8-bit grey, resolution recorded in `pHYs`).

use crate::{Geometry, LabelError, font};

/// The label as grey pixels, row by row (0 = black, 255 = white).
pub fn raster(g: &Geometry) -> Vec<u8> {
    let mut px = vec![255u8; (g.width * g.height) as usize];
    for b in &g.bars {
        for y in b.y..(b.y + b.h).min(g.height) {
            let row = (y * g.width) as usize;
            px[row + b.x as usize..row + (b.x + b.w).min(g.width) as usize].fill(0);
        }
    }
    for line in &g.lines {
        font::draw(&mut px, g.width, g.height, line.x, line.y, line.scale, &line.text);
    }
    px
}

/// Encodes the label as a PNG of exactly `width × height` px, marked with
/// its dpi so that printing it at "actual size" gives the configured inches.
pub fn label_png(g: &Geometry) -> Result<Vec<u8>, LabelError> {
    let px = raster(g);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, g.width, g.height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    // fdeflate: labels are mostly runs of white, which it packs well, and it
    // stays fast where flate2's backend is built without optimisation.
    enc.set_compression(png::Compression::Fast);
    let per_metre = (f64::from(g.dpi) / 0.0254).round() as u32;
    enc.set_pixel_dims(Some(png::PixelDimensions {
        xppu: per_metre,
        yppu: per_metre,
        unit: png::Unit::Meter,
    }));
    let mut writer = enc.write_header().map_err(|e| LabelError::Png(e.to_string()))?;
    writer.write_image_data(&px).map_err(|e| LabelError::Png(e.to_string()))?;
    writer.finish().map_err(|e| LabelError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LabelsConfig, Stock, layout};

    fn size_of(png: &[u8]) -> (u32, u32) {
        let be = |r: &[u8]| u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        (be(&png[16..20]), be(&png[20..24]))
    }

    #[test]
    fn sizes_are_cas_man_s() {
        let cfg = LabelsConfig::default();
        for (id, stock, size) in
            [("ANT00001P1", Stock::Standard, (360, 225)), ("CXL00007P2", Stock::CoaxLong, (300, 102))]
        {
            let png = layout(&cfg, id, stock).and_then(|g| label_png(&g)).unwrap_or_default();
            assert_eq!(&png[1..4], b"PNG");
            assert_eq!(size_of(&png), size);
        }
    }

    #[test]
    fn the_text_is_drawn_beneath_the_bars() {
        let g =
            layout(&LabelsConfig::default(), "LNA00042P2", Stock::Standard).unwrap_or_else(|e| panic!("{e}"));
        let px = raster(&g);
        let line = &g.lines[0];
        let text_rows = &px[(line.y * g.width) as usize..((line.y + 20 * line.scale) * g.width) as usize];
        assert!(text_rows.contains(&0), "no ink in the text band");
        // The quiet zones stay white from top to bottom of the bars.
        let bar = g.bars[0];
        for y in bar.y..bar.y + bar.h {
            assert!(px[(y * g.width) as usize..(y * g.width + bar.x) as usize].iter().all(|&p| p == 255));
        }
    }
}
