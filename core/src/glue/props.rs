//! GStreamer property types shared by several elements.
//!
//! Each plugin is its own shared library with its own copy of this crate, and a GType can be
//! registered once per process: so every plugin declares its own execution-provider enum type
//! (with its own GType name) through [`execution_provider_enum!`].

/// Declares a `glib::Enum` of execution providers named `$ty`, registered as GType `$gtype`,
/// convertible into [`crate::inference::Provider`].
#[macro_export]
macro_rules! execution_provider_enum {
    ($ty:ident, $gtype:literal) => {
        /// Execution provider choices, as listed by gst-inspect.
        #[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
        #[repr(u32)]
        #[enum_type(name = $gtype)]
        pub enum $ty {
            #[default]
            #[enum_value(name = "CPU (always available)", nick = "cpu")]
            Cpu = 0,
            #[enum_value(
                name = "CUDA (build with --features cuda, onnxruntime-gpu library)",
                nick = "cuda"
            )]
            Cuda = 1,
            #[enum_value(name = "TensorRT (build with --features tensorrt)", nick = "tensorrt")]
            TensorRt = 2,
            #[enum_value(name = "OpenVINO (build with --features openvino)", nick = "openvino")]
            OpenVino = 3,
        }

        impl From<$ty> for $crate::inference::Provider {
            fn from(p: $ty) -> Self {
                match p {
                    $ty::Cpu => $crate::inference::Provider::Cpu,
                    $ty::Cuda => $crate::inference::Provider::Cuda,
                    $ty::TensorRt => $crate::inference::Provider::TensorRt,
                    $ty::OpenVino => $crate::inference::Provider::OpenVino,
                }
            }
        }
    };
}

/// Resolves a secret-bearing property in place (`env:NAME`, `@FILE` or the value itself,
/// see [`crate::secrets::resolve`]); the error names the property, not the secret.
pub fn resolve_secret(property: &str, value: &mut Option<String>) -> Result<(), gst::ErrorMessage> {
    if let Some(v) = value.as_deref() {
        let r = crate::secrets::resolve(v).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ["Property {}: {}", property, e]
            )
        })?;
        *value = Some(r);
    }
    Ok(())
}
