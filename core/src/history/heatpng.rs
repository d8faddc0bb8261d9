//! A heat map as a PNG (the `png` crate of image-rs): cells coloured from dark blue (few
//! points) through yellow to red (the most), cells without points left as the floor plan
//! (a PNG stretched over the map's bounds) or dark grey. Row 0 of the grid (smallest y) is
//! at the top, as map coordinates are drawn on the floor-map page.

use super::query::Heat;
use std::path::Path;

/// Pixels per cell: the image is about 640 pixels on its longer side (1 to 64 per cell).
fn scale(h: &Heat) -> usize {
    (640 / h.cols.max(h.rows)).clamp(1, 64)
}

/// The colour of a cell with `v` in (0, 1]: blue → cyan → yellow → red.
fn ramp(v: f64) -> [u8; 3] {
    let stops = [
        (0.0, [20.0, 40.0, 160.0]),
        (0.33, [0.0, 200.0, 220.0]),
        (0.66, [250.0, 230.0, 40.0]),
        (1.0, [230.0, 20.0, 20.0]),
    ];
    let v = v.clamp(0.0, 1.0);
    for w in stops.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if v <= b {
            let f = (v - a) / (b - a);
            return [0, 1, 2].map(|i| (ca[i] + (cb[i] - ca[i]) * f).round() as u8);
        }
    }
    [230, 20, 20]
}

/// An RGB8 image decoded from a PNG file.
fn read_png(path: &Path) -> Result<(usize, usize, Vec<u8>), String> {
    let fail = |e: &dyn std::fmt::Display| format!("floor plan {}: {e}", path.display());
    let f = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(|e| fail(&e))?;
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| fail(&"too large"))?
    ];
    let info = reader.next_frame(&mut buf).map_err(|e| fail(&e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let mut rgb = Vec::with_capacity(w * h * 3);
    for px in buf[..info.buffer_size()].chunks(channels) {
        match channels {
            1 | 2 => rgb.extend([px[0]; 3]),
            _ => rgb.extend(&px[..3]),
        }
    }
    Ok((w, h, rgb))
}

/// Writes `heat` to `out`; `plan` (a PNG of the area `heat` covers) is drawn underneath.
/// Returns the image size.
pub fn write_png(heat: &Heat, plan: Option<&Path>, out: &Path) -> Result<(u32, u32), String> {
    let (png, w, h) = encode_png(heat, plan)?;
    let fail = |e: &dyn std::fmt::Display| format!("heat map {}: {e}", out.display());
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    std::fs::write(out, png).map_err(|e| fail(&e))?;
    Ok((w, h))
}

/// `heat` as PNG bytes (see [`write_png`]), with the image size.
pub fn encode_png(heat: &Heat, plan: Option<&Path>) -> Result<(Vec<u8>, u32, u32), String> {
    let s = scale(heat);
    let (w, h) = (heat.cols * s, heat.rows * s);
    let mut rgb = vec![48u8; w * h * 3];
    if let Some(p) = plan {
        let (pw, ph, img) = read_png(p)?;
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (x * pw / w, y * ph / h);
                let k = (sy * pw + sx) * 3;
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&img[k..k + 3]);
            }
        }
    }
    let max = heat.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    for (i, &c) in heat.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        // Square root: a spot where someone stood for minutes does not hide a walk past.
        let colour = ramp((c as f64 / max).sqrt());
        let (cx, cy) = (i % heat.cols, i / heat.cols);
        for y in cy * s..(cy + 1) * s {
            for x in cx * s..(cx + 1) * s {
                let px = &mut rgb[(y * w + x) * 3..][..3];
                for ch in 0..3 {
                    // 75 % colour over the plan.
                    px[ch] = ((colour[ch] as u32 * 3 + px[ch] as u32) / 4) as u8;
                }
            }
        }
    }
    let fail = |e: &dyn std::fmt::Display| format!("heat map: {e}");
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| fail(&e))?;
        writer.write_image_data(&rgb).map_err(|e| fail(&e))?;
        writer.finish().map_err(|e| fail(&e))?;
    }
    Ok((out, w as u32, h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_from_blue_to_red() {
        assert_eq!(ramp(0.0), [20, 40, 160]);
        assert_eq!(ramp(1.0), [230, 20, 20]);
        let mid = ramp(0.66);
        assert!(mid[0] > 200 && mid[1] > 200 && mid[2] < 60, "{mid:?}");
    }

    #[test]
    fn a_written_heat_map_reads_back_with_the_hot_cell_red() {
        let heat = Heat {
            x0: 0.0,
            y0: 0.0,
            cell: 1.0,
            cols: 4,
            rows: 2,
            counts: vec![0, 0, 0, 9, 1, 0, 0, 0],
            points: 10,
        };
        let dir = std::env::temp_dir().join(format!("sl-heat-{}", std::process::id()));
        let out = dir.join("heat.png");
        let (w, h) = write_png(&heat, None, &out).unwrap();
        assert_eq!((w, h), (256, 128), "64 pixels per cell at most");
        let (rw, rh, rgb) = read_png(&out).unwrap();
        assert_eq!((rw, rh), (256, 128));
        let px = |x: usize, y: usize| &rgb[(y * rw + x) * 3..][..3];
        let hot = px(3 * 64 + 32, 32);
        assert!(
            hot[0] > 150 && hot[1] < 60 && hot[2] < 60,
            "hot cell {hot:?}"
        );
        assert_eq!(px(32, 32), [48, 48, 48], "empty cell");
        let cool = px(32, 96);
        assert!(
            cool[2] > cool[0],
            "a cell with few points is blue: {cool:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
