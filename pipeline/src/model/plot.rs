//! The ROC curves of the held-out evaluation as an SVG file (plotters, SVG backend).

use std::path::Path;

use plotters::prelude::*;

use super::TrainError;

/// One curve: its legend label and its `(false-positive rate, true-positive rate)` points.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend label (e.g. `forest (AUC 0.91)`).
    pub label: String,
    /// The points, from `(0, 0)` to `(1, 1)`.
    pub points: Vec<(f64, f64)>,
}

/// The curves' colours, in order: black, purple, violet and grey, none of them near a credit
/// colour (blue, green, yellow, red), so that a curve never reads as a colour grade (issue
/// 19 item 7). More curves than colours reuse them.
const CURVE_COLOURS: [RGBColor; 4] = [
    RGBColor(0, 0, 0),
    RGBColor(117, 80, 163),
    RGBColor(170, 51, 153),
    RGBColor(110, 110, 110),
];

/// Draws `curves` and the chance diagonal into an SVG file at `path`.
pub fn roc_svg(path: &Path, title: &str, curves: &[Curve]) -> Result<(), TrainError> {
    let err = |e: &dyn std::fmt::Display| TrainError::Plot {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let root = SVGBackend::new(path, (720, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("false-positive rate")
        .y_desc("true-positive rate")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(|e| err(&e))?
        .label("chance")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    for (i, c) in curves.iter().enumerate() {
        let colour = CURVE_COLOURS[i % CURVE_COLOURS.len()].to_rgba();
        chart
            .draw_series(LineSeries::new(
                c.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hue in degrees and saturation (HSV) of an RGB colour.
    fn hue_saturation(RGBColor(r, g, b): RGBColor) -> (f64, f64) {
        let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let d = max - min;
        let saturation = if max == 0.0 { 0.0 } else { d / max };
        let hue = if d == 0.0 {
            0.0
        } else if max == r {
            60.0 * ((g - b) / d).rem_euclid(6.0)
        } else if max == g {
            60.0 * ((b - r) / d + 2.0)
        } else {
            60.0 * ((r - g) / d + 4.0)
        };
        (hue, saturation)
    }

    #[test]
    fn curves_are_drawn_in_no_credit_colour() {
        // Red, yellow, green and blue hues, with a margin of 25 degrees each way.
        let credit = [0.0, 55.0, 120.0, 215.0, 360.0];
        for c in CURVE_COLOURS {
            let (hue, saturation) = hue_saturation(c);
            let near = credit.iter().any(|h| (hue - h).abs() < 25.0);
            assert!(
                saturation < 0.2 || !near,
                "{c:?}: hue {hue}, saturation {saturation}"
            );
        }
        // The colours an older version drew with are caught.
        for c in [
            RGBColor(230, 25, 75),
            RGBColor(60, 180, 75),
            RGBColor(255, 225, 25),
        ] {
            let (hue, saturation) = hue_saturation(c);
            assert!(saturation >= 0.2 && credit.iter().any(|h| (hue - h).abs() < 25.0));
        }
        let dir = std::env::temp_dir().join(format!("steward_roc_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("roc.svg");
        let curve = |label: &str| Curve {
            label: label.to_owned(),
            points: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
        };
        roc_svg(&path, "t", &[curve("a"), curve("b"), curve("c")]).expect("svg");
        let svg = std::fs::read_to_string(&path).expect("read").to_uppercase();
        let _ = std::fs::remove_dir_all(&dir);
        for bad in ["#E6194B", "#3CB44B", "#FFE119"] {
            assert!(!svg.contains(bad), "{bad} in the plot");
        }
        assert!(svg.contains("#7550A3"));
    }
}
