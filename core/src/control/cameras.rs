//! The cameras an operator added or removed through the API, kept in the state directory
//! (`cameras.json`) so that a restarted runner comes back with them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddedCamera {
    pub name: String,
    /// As given (it may hold the camera's credentials: the file is its owner's only).
    pub uri: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraStore {
    pub version: u32,
    /// Added through the API, in order.
    pub added: Vec<AddedCamera>,
    /// Cameras of the pipeline file removed through the API.
    pub removed: Vec<String>,
}

impl CameraStore {
    /// `<dir>/cameras.json`; none yet is an empty store.
    pub fn load(dir: &Path) -> Result<CameraStore, String> {
        let path = dir.join("cameras.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("camera state {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CameraStore {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(format!("camera state {}: {e}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("state dir {}: {e}", dir.display()))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        super::write_private(&dir.join("cameras.json"), &text)
    }

    pub fn add(&mut self, cam: AddedCamera) {
        self.removed.retain(|n| *n != cam.name);
        self.added.retain(|c| c.name != cam.name);
        self.added.push(cam);
    }

    /// Forgets an added camera, or remembers that a file camera was removed.
    pub fn remove(&mut self, name: &str) {
        let before = self.added.len();
        self.added.retain(|c| c.name != name);
        if self.added.len() == before && !self.removed.iter().any(|n| n == name) {
            self.removed.push(name.to_string());
        }
    }

    pub fn is_removed(&self, name: &str) -> bool {
        self.removed.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_and_removed_cameras_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("sl-cams-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = CameraStore::load(&dir).unwrap();
        let cam = |n: &str| AddedCamera {
            name: n.into(),
            uri: format!("rtsp://u:p@cam/{n}"),
            vars: BTreeMap::new(),
        };
        s.add(cam("a"));
        s.add(cam("b"));
        s.remove("a");
        s.remove("file-cam");
        s.save(&dir).unwrap();
        let back = CameraStore::load(&dir).unwrap();
        assert_eq!(back.added, vec![cam("b")]);
        assert!(back.is_removed("file-cam") && !back.is_removed("a"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("cameras.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "it holds camera credentials");
        // Added again after its removal: no longer removed.
        let mut s = back;
        s.add(cam("file-cam"));
        assert!(!s.is_removed("file-cam"));
        std::fs::write(dir.join("cameras.json"), "{").unwrap();
        assert!(
            CameraStore::load(&dir)
                .unwrap_err()
                .contains("cameras.json")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
