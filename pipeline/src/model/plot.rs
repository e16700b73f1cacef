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
        let colour = Palette99::pick(i).to_rgba();
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
