//! The GstAnalytics form of our metadata (GStreamer >= 1.24, cargo feature `analytics`),
//! written next to the ROI metas so that upstream consumers (`objectdetectionoverlay`, ONVIF
//! metadata export, DL Streamer 2026's gstgva) see our objects. Contract: docs/METADATA.md.
//!
//! Per object: an object-detection Mtd (type quark = the ROI type, pixel box, confidence)
//! whose id is the ROI meta's id; a tracking Mtd (track id, first/last seen) and, for a
//! placed person, a second one with the map's global id; a classification Mtd with the
//! recognised label and its similarity. Each is related to the object by `RELATE_TO`.

use crate::meta::{Recognition, Roi};
use gst_analytics::prelude::*;
use gst_analytics::{
    AnalyticsClassificationMtd, AnalyticsODMtd, AnalyticsRelationMeta, AnalyticsTrackingMtd,
    RelTypes,
};

fn relation_meta(
    buffer: &mut gst::BufferRef,
) -> gst::MetaRefMut<'_, AnalyticsRelationMeta, gst::meta::Standalone> {
    if buffer.meta::<AnalyticsRelationMeta>().is_none() {
        AnalyticsRelationMeta::add(buffer);
    }
    buffer
        .meta_mut::<AnalyticsRelationMeta>()
        .expect("relation meta just added")
}

/// Adds the object-detection Mtd of a detected object; its id (the ROI meta takes it too).
pub fn add_object(
    buffer: &mut gst::BufferRef,
    roi_type: &str,
    rect: (u32, u32, u32, u32),
    confidence: f32,
) -> Option<i32> {
    let (x, y, w, h) = rect;
    let mut meta = relation_meta(buffer);
    let od = meta
        .add_od_mtd(
            glib::Quark::from_str(roi_type),
            x as i32,
            y as i32,
            w as i32,
            h as i32,
            confidence,
        )
        .ok()?;
    i32::try_from(od.id()).ok()
}

/// Relates the tracking (and global id) and classification Mtds of object `od_id`. False
/// when the buffer has no such object.
pub fn relate(
    buffer: &mut gst::BufferRef,
    od_id: i32,
    track: &crate::meta::Tracked,
    recognition: Option<&Recognition>,
) -> bool {
    let Ok(od_id) = u32::try_from(od_id) else {
        return false;
    };
    let exists = buffer
        .meta::<AnalyticsRelationMeta>()
        .is_some_and(|m| m.mtd::<AnalyticsODMtd>(od_id).is_some());
    if !exists {
        return false;
    }
    let first = gst::ClockTime::from_nseconds(track.first_seen_ns);
    let last = gst::ClockTime::from_nseconds(track.last_seen_ns.max(track.first_seen_ns));
    let mut tracks = Vec::new();
    for id in std::iter::once(track.id).chain(track.global_id) {
        if let Ok(t) = relation_meta(buffer).add_tracking_mtd(id, first) {
            tracks.push(t.id());
        }
    }
    for &t in &tracks {
        let mut meta = relation_meta(buffer);
        if let Some(mut m) = meta.mtd_mut::<AnalyticsTrackingMtd>(t) {
            let _ = m.update_last_seen(last);
        }
    }
    let mut related = tracks;
    if let Some(r) = recognition {
        let level = (r.similarity as f32).clamp(0.0, 1.0);
        let quark = glib::Quark::from_str(r.label.as_str());
        if let Ok(c) = relation_meta(buffer).add_one_cls_mtd(level, quark) {
            related.push(c.id());
        }
    }
    let mut meta = relation_meta(buffer);
    related
        .into_iter()
        .all(|m| meta.set_relation(RelTypes::RELATE_TO, od_id, m).is_ok())
}

/// Objects read from the GstAnalytics form alone (a buffer that carries no ROI metas, e.g.
/// from an element that copies only the relation meta, or a producer that writes only it):
/// box, type and confidence of each object-detection Mtd, the track id of its first related
/// tracking Mtd, the label and level of its related classification. The identity is the
/// slug of the label, as the gallery makes it; landmarks are not in this form on 1.26.
pub fn read_objects(buffer: &gst::BufferRef) -> Vec<Roi> {
    let Some(meta) = buffer.meta::<AnalyticsRelationMeta>() else {
        return Vec::new();
    };
    let mut rois = Vec::new();
    for od in meta.iter::<AnalyticsODMtd>() {
        let Ok(loc) = od.location() else { continue };
        let id = od.id();
        let track = meta
            .iter_direct_related::<AnalyticsTrackingMtd>(id, RelTypes::RELATE_TO)
            .next()
            .map(|t| t.info().0);
        let class = meta
            .iter_direct_related::<AnalyticsClassificationMtd>(id, RelTypes::RELATE_TO)
            .next()
            .filter(|c| !c.is_empty())
            .map(|c| (c.quark(0).as_str().to_string(), c.level(0) as f64));
        let roi_type = od
            .obj_type()
            .map(|q| q.as_str().to_string())
            .unwrap_or_default();
        let unknown = class.as_ref().is_some_and(|(l, _)| l == "unknown");
        rois.push(Roi {
            id: id as i32,
            parent_id: -1,
            roi_type: roi_type.clone(),
            rect: (
                loc.x.max(0) as u32,
                loc.y.max(0) as u32,
                loc.w.max(0) as u32,
                loc.h.max(0) as u32,
            ),
            confidence: Some(loc.loc_conf_lvl as f64),
            detection_label: Some(roi_type),
            landmarks: None,
            object_id: track.map(|t| i64::from(crate::meta::object_id(t))),
            identity: class
                .as_ref()
                .filter(|_| !unknown)
                .map(|(l, _)| crate::gallery::slug(l)),
            recognition_label: class.as_ref().map(|(l, _)| l.clone()),
            unknown_id: None,
            similarity: class.map(|(_, s)| s),
        });
    }
    rois.sort_by_key(|r| r.id);
    rois
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{self, Tracked};
    use crate::postprocess::Detection;
    use gst_video::VideoRegionOfInterestMeta;

    fn det(x: f32) -> Detection {
        Detection {
            x1: x,
            y1: 20.0,
            x2: x + 40.0,
            y2: 80.0,
            score: 0.9,
            landmarks: None,
            class_id: 0,
        }
    }

    #[test]
    fn objects_have_the_roi_ids_and_read_back_without_roi_metas() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        let a = meta::add_detection(b, meta::ROI_FACE, &det(10.0), 200, 100, "face", 0, "m");
        let c = meta::add_detection(b, meta::ROI_FACE, &det(100.0), 200, 100, "face", 0, "m");
        assert_eq!((a, c), (0, 1));
        let rec = Recognition {
            label: "Ada Lovelace".into(),
            identity: "ada-lovelace".into(),
            similarity: 0.71,
            unknown_id: String::new(),
            label_id: 0,
        };
        let t = Tracked {
            id: 7,
            first_seen_ns: 1_000,
            last_seen_ns: 5_000,
            global_id: None,
        };
        assert!(meta::annotate(b, c, &t, Some(&rec), Vec::new()));
        let from_roi = meta::read_rois(b);
        // Without the ROI metas, the same objects come back from the relation meta.
        while let Some(m) = b.meta_mut::<VideoRegionOfInterestMeta>() {
            m.remove().unwrap();
        }
        let from_analytics = meta::read_rois(b);
        assert_eq!(from_analytics.len(), 2);
        for (r, o) in from_roi.iter().zip(&from_analytics) {
            assert_eq!((r.id, r.rect, &r.roi_type), (o.id, o.rect, &o.roi_type));
            assert_eq!(r.object_id, o.object_id);
            assert_eq!(r.recognition_label, o.recognition_label);
            assert_eq!(r.identity, o.identity);
        }
        assert!(from_analytics[1].is_recognised());
        assert!((from_analytics[1].similarity.unwrap() - 0.71).abs() < 1e-6);
        let m = b.meta::<AnalyticsRelationMeta>().unwrap();
        let trk = m
            .iter_direct_related::<AnalyticsTrackingMtd>(1, RelTypes::RELATE_TO)
            .next()
            .unwrap();
        let (id, first, last, lost) = trk.info();
        assert_eq!(
            (id, first.nseconds(), last.nseconds(), lost),
            (7, 1_000, 5_000, false)
        );
    }

    #[test]
    fn a_placed_person_has_its_track_and_its_global_id() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        let p = meta::add_detection(b, meta::ROI_PERSON, &det(10.0), 200, 100, "person", 0, "m");
        let t = Tracked {
            id: 3,
            first_seen_ns: 0,
            last_seen_ns: 40,
            global_id: Some(1001),
        };
        assert!(meta::annotate(b, p, &t, None, Vec::new()));
        let m = b.meta::<AnalyticsRelationMeta>().unwrap();
        let ids: Vec<u64> = m
            .iter_direct_related::<AnalyticsTrackingMtd>(p as u32, RelTypes::RELATE_TO)
            .map(|t| t.info().0)
            .collect();
        assert_eq!(ids, vec![3, 1001]);
        assert_eq!(
            m.iter_direct_related::<AnalyticsClassificationMtd>(p as u32, RelTypes::RELATE_TO)
                .count(),
            0
        );
        // A ROI id without an object is refused, nothing related.
        assert!(!relate(b, 9, &t, None));
    }
}
