//! The start-up glue every analytics element repeats: resolve the model it names, build the
//! engine options from its properties, get the shared engine — each with the element error
//! that names the file and the cause — its camera name, and the warning when the engine
//! could not load a further session.

use crate::inference::{Engine, EngineHandle, EngineOptions, Provider};
use crate::models::{self, ResolvedModel};
use std::time::Duration;

/// The model named by a `model` property (`what`: "face detection", …), or the error.
pub fn resolve_model(
    what: &str,
    model: &str,
    default: &str,
) -> Result<ResolvedModel, gst::ErrorMessage> {
    models::resolve(model, default).map_err(|e| {
        gst::error_msg!(
            gst::ResourceError::OpenRead,
            ["Cannot load {} model: {}", what, e]
        )
    })
}

/// Engine options from the elements' common properties.
pub fn engine_options(
    provider: Provider,
    device_id: i32,
    max_batch: u32,
    batch_timeout_ms: u32,
) -> EngineOptions {
    EngineOptions {
        provider,
        device_id,
        max_batch: max_batch as usize,
        batch_timeout: Duration::from_millis(batch_timeout_ms as u64),
    }
}

/// The process-wide engine of `model` with `opts`, or the error naming the file.
pub fn shared_engine(
    model: &ResolvedModel,
    opts: &EngineOptions,
) -> Result<EngineHandle, gst::ErrorMessage> {
    Engine::shared(model, opts).map_err(|e| {
        gst::error_msg!(
            gst::ResourceError::OpenRead,
            ["Cannot load model {}: {}", model.path.display(), e]
        )
    })
}

/// The camera an element reports: its `camera` property, else its name.
pub fn camera_name(
    configured: Option<String>,
    element: &impl gst::prelude::GstObjectExt,
) -> String {
    configured.unwrap_or_else(|| element.name().to_string())
}

/// Posts, once per engine, the warning that its runs share the loaded sessions because no
/// further one could be loaded (`what`: "Face detection", …).
pub fn warn_if_refused(
    element: &impl glib::prelude::IsA<gst::Element>,
    what: &str,
    engine: &Engine,
) {
    if let Some(why) = engine.take_refusal() {
        gst::element_warning!(
            element,
            gst::ResourceError::NoSpaceLeft,
            (
                "{} runs share the loaded model sessions: no further one could be loaded",
                what
            ),
            ["{}", why]
        );
    }
}
