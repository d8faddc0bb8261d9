//! `sightline gallery`: enrolment from real photos, refusals with clear messages, list,
//! remove, export/import.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn faces() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data/faces")
}

fn sl(gallery: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sightline"))
        .arg("gallery")
        .arg("--file")
        .arg(gallery)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-gal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn enroll_list_remove_export_import() {
    let dir = tmp("main");
    let g = dir.join("staff.slg");
    let f = faces();
    let p = |r: &str| f.join(r).to_string_lossy().into_owned();
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "Barack Obama",
            &p("face_recognition_examples/obama/obama.jpg"),
            &p("face_recognition_examples/obama/obama2.jpg"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "Joe Biden",
            &p("face_recognition_examples/biden/biden.jpg"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Privacy by default: no face images written anywhere next to the gallery.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let o = sl(&g, &["list"]);
    let t = text(&o);
    assert!(
        t.contains("2 identities") && t.contains("barack-obama") && t.contains("embeddings=2"),
        "{t}"
    );
    let json = dir.join("staff.json");
    assert!(sl(&g, &["export", json.to_str().unwrap()]).status.success());
    let g2 = dir.join("copy.slg");
    let o = sl(&g2, &["import", json.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).contains("2 identities"),
        "{}",
        text(&o)
    );
    assert!(sl(&g, &["remove", "Joe Biden"]).status.success());
    assert!(text(&sl(&g, &["list"])).contains("1 identities"));
    let o = sl(&g, &["remove", "Nobody"]);
    assert!(!o.status.success() && text(&o).contains("no identity 'Nobody'"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn photos_without_exactly_one_face_are_refused_clearly() {
    let dir = tmp("refuse");
    let g = dir.join("g.slg");
    let f = faces();
    let group = f.join("misc/t1.jpg");
    let o = sl(&g, &["enroll", "--name", "x", group.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("6 faces found") && text(&o).contains("--largest"),
        "{}",
        text(&o)
    );
    assert!(!g.exists(), "nothing enrolled");
    let scene = f.join("../multicam/meva/frames/G328.png");
    let o = sl(&g, &["enroll", "--name", "x", scene.to_str().unwrap()]);
    assert!(text(&o).contains("no face found"), "{}", text(&o));
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "x",
            "--largest",
            group.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Crops only when asked.
    let crops = dir.join("crops");
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "Tom Hanks",
            "--save-crops",
            crops.to_str().unwrap(),
            f.join("misc/Tom_Hanks_54745.png").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(crops.join("tom-hanks-0.png").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_gallery_and_wrong_model_are_clear_errors() {
    let dir = tmp("bad");
    let g = dir.join("g.slg");
    std::fs::write(&g, b"definitely not a gallery").unwrap();
    let o = sl(&g, &["list"]);
    assert!(
        !o.status.success() && text(&o).contains("not a Sightline gallery file"),
        "{}",
        text(&o)
    );
    // A 512-d export imported into a 192-d gallery.
    let json = dir.join("w600k.json");
    std::fs::write(&json, r#"{"model":"w600k-mbf","dims":512,"identities":[]}"#).unwrap();
    let g2 = dir.join("m.slg");
    let o = sl(&g2, &["import", json.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("w600k-mbf") && text(&o).contains("re-enrol"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `source` through a gst-launch-1.0 filter (videocrop, videoscale, gaussianblur) into a PNG.
fn degrade(source: &Path, filter: &str, out: &Path) {
    let o = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", source.display()))
        .args(["!", "decodebin", "!", "videoconvert", "!"])
        .args(filter.split(' '))
        .args(["!", "videoconvert", "!", "pngenc", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .output()
        .unwrap();
    assert!(o.status.success() && out.is_file(), "{}", text(&o));
}

/// Enrolment protects the gallery: each photo is reviewed, and one that would make a poor
/// reference is refused (nothing enrolled) or enrolled with a warning, with the reason. The
/// portrait: obama.jpg, face 228x336 px at (374, 88), eyes at x 447 and 555.
#[test]
fn poor_reference_photos_are_refused_or_warned_with_the_reason() {
    let dir = tmp("review");
    let g = dir.join("g.slg");
    let f = faces();
    let obama = f.join("face_recognition_examples/obama/obama.jpg");
    let cases = [
        // The frame edge through the right eye: 30 % of the face region outside.
        (
            "cut.png",
            "videocrop left=460",
            "face cut by the edge of the photo",
        ),
        // The face 20 px wide.
        (
            "tiny.png",
            "videoscale ! video/x-raw,width=80,pixel-aspect-ratio=1/1",
            "face too small",
        ),
        // Blurred with sigma 10 px (the face is 228 px wide).
        ("blurred.png", "gaussianblur sigma=10", "face blurred"),
    ];
    for (name, filter, why) in cases {
        let out = dir.join(name);
        degrade(&obama, filter, &out);
        let o = sl(
            &g,
            &["enroll", "--name", "Barack Obama", out.to_str().unwrap()],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{name} enrolled: {t}");
        assert!(
            t.contains(&format!("{name}: face")) && t.contains("-> refused: ") && t.contains(why),
            "{name}: {t}"
        );
        assert!(t.contains("nothing enrolled"), "{t}");
        assert!(!g.exists(), "nothing enrolled");
    }
    // Softer blur (sigma 5 px) is enrolled with a warning.
    let soft = dir.join("soft.png");
    degrade(&obama, "gaussianblur sigma=5", &soft);
    let o = sl(
        &g,
        &[
            "enroll",
            "--check",
            "--name",
            "Barack Obama",
            soft.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("-> warning: soft face"), "{t}");
    assert!(
        t.contains("nothing enrolled (--check)") && !g.exists(),
        "{t}"
    );
    // Someone else among a person's photos: refused, the similarity said.
    let biden = f.join("face_recognition_examples/biden/biden.jpg");
    let obama2 = f.join("face_recognition_examples/obama/obama2.jpg");
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "Barack Obama",
            obama.to_str().unwrap(),
            obama2.to_str().unwrap(),
            biden.to_str().unwrap(),
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    let line = t
        .lines()
        .find(|l| l.contains("biden.jpg"))
        .unwrap_or_default();
    assert!(
        line.contains("refused: does not look like the person's 2 other photo(s)"),
        "{t}"
    );
    // Obama's own photos are consistent with each other.
    assert!(
        t.lines()
            .filter(|l| l.contains("/obama"))
            .all(|l| l.contains("-> ok")),
        "{t}"
    );
    // Enrolled, then another person's photo under the same name: refused against the
    // gallery's photos.
    let o = sl(
        &g,
        &[
            "enroll",
            "--name",
            "Barack Obama",
            obama.to_str().unwrap(),
            obama2.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = sl(
        &g,
        &["enroll", "--name", "Barack Obama", biden.to_str().unwrap()],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("does not look like the person's 2 other photo(s)"),
        "{t}"
    );
    assert!(text(&sl(&g, &["list"])).contains("embeddings=2"));
    std::fs::remove_dir_all(dir).unwrap();
}
