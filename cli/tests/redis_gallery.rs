//! The shared gallery over a real Redis (Debian redis-server on 127.0.0.1, started here):
//! push/pull with per-node ACL users, and clear errors.

use sightline_testkit::RedisServer;
use std::path::PathBuf;
use std::process::{Command, Output};

fn faces(rel: &str) -> String {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data/faces")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn sl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sightline"))
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

#[test]
fn two_nodes_share_a_gallery_with_their_own_acl_users() {
    // Two nodes, each with its own user; the default user is disabled.
    let redis = RedisServer::start(&[
        "--user",
        "default",
        "off",
        "--user",
        "node1",
        "on",
        ">pw-node1",
        "~sightline:*",
        "&*",
        "+@all",
        "--user",
        "node2",
        "on",
        ">pw-node2",
        "~sightline:*",
        "&*",
        "+@all",
    ]);
    let dir = std::env::temp_dir().join(format!("sl-redis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g1 = dir.join("node1.slg");
    let g2 = dir.join("node2.slg");
    let g1s = g1.to_str().unwrap();
    let o = sl(&[
        "gallery",
        "-g",
        g1s,
        "enroll",
        "--name",
        "Barack Obama",
        &faces("face_recognition_examples/obama/obama.jpg"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let url1 = redis.url(Some(("node1", "pw-node1")));
    let url2 = redis.url(Some(("node2", "pw-node2")));
    let o = sl(&["gallery", "-g", g1s, "push", "--redis-url", &url1]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("pw-node1"),
        "password printed: {}",
        text(&o)
    );
    let o = sl(&[
        "gallery",
        "-g",
        g2.to_str().unwrap(),
        "pull",
        "--redis-url",
        &url2,
    ]);
    assert!(
        o.status.success() && text(&o).contains("pulled 1 identities"),
        "{}",
        text(&o)
    );
    let o = sl(&["gallery", "-g", g2.to_str().unwrap(), "list"]);
    assert!(text(&o).contains("barack-obama"), "{}", text(&o));
    // A wrong password: a clear error that names the user but not the password.
    let bad = redis.url(Some(("node2", "wrong")));
    let o = sl(&[
        "gallery",
        "-g",
        g2.to_str().unwrap(),
        "pull",
        "--redis-url",
        &bad,
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("node2:***@127.0.0.1") && !t.contains("wrong"),
        "{t}"
    );
    assert!(
        t.to_lowercase().contains("auth") || t.contains("WRONGPASS"),
        "{t}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreachable_redis_is_a_clear_error() {
    let port = sightline_testkit::free_port();
    let dir = std::env::temp_dir().join(format!("sl-redis-cli-down-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = sl(&[
        "gallery",
        "-g",
        dir.join("x.slg").to_str().unwrap(),
        "pull",
        "--redis-url",
        &format!("redis://127.0.0.1:{port}/"),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("Redis redis://127.0.0.1:{port}/ unreachable")),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rediss_works_with_the_servers_ca_and_refuses_an_unknown_certificate() {
    let redis = RedisServer::start_tls();
    let url = redis.url(None);
    assert!(url.starts_with("rediss://"));
    let dir = std::env::temp_dir().join(format!("sl-redis-tls-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("g.slg");
    let o = sl(&[
        "gallery",
        "-g",
        g.to_str().unwrap(),
        "enroll",
        "--name",
        "Joe Biden",
        &faces("face_recognition_examples/biden/biden.jpg"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let push = |ca: Option<&std::path::Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sightline"));
        c.args([
            "gallery",
            "-g",
            g.to_str().unwrap(),
            "push",
            "--redis-url",
            &url,
        ]);
        match ca {
            Some(ca) => c.env("SIGHTLINE_REDIS_CA", ca),
            None => c.env_remove("SIGHTLINE_REDIS_CA"),
        };
        c.output().unwrap()
    };
    let o = push(redis.ca.as_deref());
    assert!(o.status.success(), "{}", text(&o));
    // Without the CA the throw-away certificate is not trusted: refused, clearly.
    let o = push(None);
    assert!(!o.status.success());
    assert!(
        text(&o).to_lowercase().contains("certificate"),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
