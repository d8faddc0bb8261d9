#!/usr/bin/env bash
# Called by meson.build: cargo build into the meson build dir, then copy the artefacts there.
#   meson-cargo.sh SOURCE_ROOT BUILD_DIR PROFILE MODEL_DIR
set -euo pipefail
src=$1 build=$2 profile=$3 model_dir=$4
export SIGHTLINE_MODEL_DIR="$model_dir"
cargo build --manifest-path "$src/Cargo.toml" --locked --profile "$profile" \
  --target-dir "$build/cargo" -p gst-plugin-facedetect -p gst-plugin-facematch -p gst-plugin-presence -p gst-plugin-reidmap -p gst-plugin-sightline-webrtc -p sightline-cli
out=$build/cargo/$([ "$profile" = dev ] && echo debug || echo "$profile")
cp "$out/libgstfacedetect.so" "$out/libgstfacematch.so" "$out/libgstpresence.so" "$out/libgstreidmap.so" "$out/libgstsightlinewebrtc.so" "$out/sightline" "$build/"
