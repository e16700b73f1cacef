//! The risk model's training side (`steward train`) and the loading of a model file for
//! `steward run --model`. Scoring itself (`Q` from a model) is `rules::model`, shared by
//! the dataflow and the reference.
//!
//! - [`dataset`]: history → log of accepted records → monthly checkpoints → samples
//!   (features at sampled as-of times, label over the next 12 months), digest, time split.
//! - [`fit`]: logistic regression and random forest with smartcore, exported as
//!   `rules::model::Params`.
//! - [`metrics`]: ROC AUC, ROC curve, precision and recall at red, calibration.
//! - [`plot`]: the ROC curves as SVG.
//! - [`train`]: the `steward train` command.

pub mod dataset;
pub mod fit;
pub mod metrics;
pub mod plot;
pub mod train;

use std::path::{Path, PathBuf};

use generator::GenConfigError;
use rules::catalogue::Catalogue;
use rules::model::{Model, ModelError};

/// Why training or loading a model failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file (the message includes the cause, so it is not chained).
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A model file was refused (the message includes why).
    #[error("{path}: {error}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        error: ModelError,
    },
    /// The generator configuration is invalid.
    #[error("generator: {0}")]
    Gen(#[from] GenConfigError),
    /// The history gives no usable training or test set.
    #[error("training data: {0}")]
    Data(String),
    /// smartcore failed to fit.
    #[error("fitting the {model}: {detail}")]
    Fit {
        /// Which model.
        model: &'static str,
        /// smartcore's message.
        detail: String,
    },
    /// Serialising a model or metrics.
    #[error("serialising: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing the ROC plot.
    #[error("plotting {path}: {detail}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
        move |error| TrainError::Io {
            path: path.to_owned(),
            error,
        }
    }
}

/// Reads the model file at `path` and checks it against the catalogue (feature list,
/// parameters, version): a model whose features do not match is refused here, at start.
pub fn load(path: &Path, cat: &Catalogue) -> Result<Model, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    Model::from_json(&text, cat).map_err(|error| TrainError::Model {
        path: path.to_owned(),
        error,
    })
}
