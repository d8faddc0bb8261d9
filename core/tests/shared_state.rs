//! The Redis protocols of shared presence groups and shared unknown ids, on their worker
//! threads, against a real redis-server: sightings published and pulled, one node wins an
//! absence claim, the unknown consensus counts cameras of every node, a stranger has one id
//! on two nodes; with Redis away the link says so once and decides locally.

use sightline_core::presence_sync::{GroupSync, GroupSyncConfig, Outcome, Request};
use sightline_core::unknown::{Assignment, RESOLVE_TIMEOUT, UnknownRegistry};
use sightline_testkit::RedisServer;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn node(url: &str, name: &str) -> GroupSync {
    GroupSync::start(GroupSyncConfig::new(url, "g1", name), || {}, |_| {}).unwrap()
}

/// Outcomes of `link` until `want` says enough (deadline 10 s).
fn outcomes(link: &GroupSync, mut want: impl FnMut(&[Outcome]) -> bool) -> Vec<Outcome> {
    let mut all = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while !want(&all) {
        assert!(Instant::now() < end, "timed out: {all:?}");
        all.extend(link.take_outcomes());
        std::thread::sleep(Duration::from_millis(10));
    }
    all
}

#[test]
fn sightings_claims_and_consensus_are_shared_between_nodes() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(None);
    let (a, b) = (node(&url, "a"), node(&url, "b"));
    a.send(Request::Seen {
        identity: "ann".into(),
        label: "Ann".into(),
        at: 5,
    })
    .unwrap();
    // b's pulls see a's sighting.
    let got = outcomes(&b, |o| {
        o.iter().any(
            |x| matches!(x, Outcome::Sightings(v) if v.contains(&("ann".into(), 5, "Ann".into()))),
        )
    });
    assert!(!got.is_empty());
    // An older sighting never replaces a newer one.
    b.send(Request::Seen {
        identity: "ann".into(),
        label: "Ann".into(),
        at: 3,
    })
    .unwrap();
    assert!(b.sync(Duration::from_secs(5)));
    let last = b
        .take_outcomes()
        .into_iter()
        .filter_map(|o| match o {
            Outcome::Sightings(v) => v.into_iter().find(|s| s.0 == "ann"),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!(last.1, 5);
    // Both claim the same absence: exactly one wins.
    for (l, t) in [(&a, 1), (&b, 2)] {
        l.send(Request::Claim {
            token: t,
            identity: "ann".into(),
            last_seen: 5,
            tolerance: 10,
        })
        .unwrap();
    }
    let won = |l: &GroupSync| {
        outcomes(l, |o| {
            o.iter().any(|x| matches!(x, Outcome::Claimed { .. }))
        })
        .into_iter()
        .filter_map(|o| match o {
            Outcome::Claimed { won, .. } => Some(won),
            _ => None,
        })
        .next()
        .unwrap()
    };
    assert!(won(&a) ^ won(&b), "one node raises the alert");
    // A stranger on a camera of each node: the second sighting completes the consensus.
    let unknown = |l: &GroupSync, cam: &str| {
        l.send(Request::Unknown {
            uid: "unknown-7".into(),
            camera: cam.into(),
            needed: 2,
            window: Duration::from_secs(60),
        })
        .unwrap();
        assert!(l.sync(Duration::from_secs(5)));
        l.take_outcomes()
            .into_iter()
            .any(|o| matches!(o, Outcome::UnknownAlert { cameras: 2, .. }))
    };
    assert!(!unknown(&a, "door"));
    assert!(unknown(&b, "till"));
    assert!(a.healthy() && b.healthy());
}

/// Established TCP connections to 127.0.0.1:`port` (the kernel's table: a stopped server's
/// clients still connect).
fn connections_to(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "01"
        })
        .count()
}

#[test]
fn sync_answers_after_the_requests_before_it_even_while_a_pull_of_its_own_is_under_way() {
    // The worker's first pull starts by itself; a hung Redis holds it there. A stranger
    // sent then, and a sync after it: the sync returns only once the stranger was counted
    // (it used to return when the pull it did not ask for ended, before the stranger).
    let redis = RedisServer::start(&[]);
    let url = redis.url(None);
    let mut cfg = GroupSyncConfig::new(&url, "g-sync", "a");
    cfg.io_timeout = Duration::from_secs(20);
    cfg.refresh = Duration::from_secs(3600);
    redis.pause();
    let before = connections_to(redis.port);
    let a = GroupSync::start(cfg, || {}, |_| {}).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while connections_to(redis.port) <= before {
        assert!(Instant::now() < end, "the worker never connected");
        std::thread::sleep(Duration::from_millis(5));
    }
    for cam in ["door", "till"] {
        a.send(Request::Unknown {
            uid: "unknown-3".into(),
            camera: cam.into(),
            needed: 2,
            window: Duration::from_secs(60),
        })
        .unwrap();
    }
    std::thread::scope(|s| {
        let waiter = s.spawn(|| a.sync(Duration::from_secs(20)));
        redis.resume();
        assert!(waiter.join().unwrap(), "sync timed out");
    });
    let got = a.take_outcomes();
    assert!(
        got.iter()
            .any(|o| matches!(o, Outcome::UnknownAlert { cameras: 2, .. })),
        "the stranger's alert is there when sync returns: {got:?}"
    );
}

#[test]
fn with_redis_away_the_link_says_so_once_and_grants_claims_locally() {
    let mut redis = RedisServer::start(&[]);
    let url = redis.url(None);
    let a = node(&url, "a");
    redis.kill();
    for t in 0..3 {
        a.send(Request::Claim {
            token: t,
            identity: "bob".into(),
            last_seen: 1,
            tolerance: 1,
        })
        .unwrap();
    }
    let got = outcomes(&a, |o| o.len() >= 3);
    assert!(
        got.iter()
            .all(|o| matches!(o, Outcome::Claimed { won: true, .. })),
        "{got:?}"
    );
    assert!(!a.healthy());
    let problems = a.take_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("local"), "{problems:?}");
    // Back: said once more, healthy again, the sighting made meanwhile is published.
    a.send(Request::Seen {
        identity: "bob".into(),
        label: "Bob".into(),
        at: 9,
    })
    .unwrap();
    redis.restart();
    let end = Instant::now() + Duration::from_secs(15);
    let con = redis::Client::open(url.as_str()).unwrap();
    loop {
        let v: Option<u64> = con
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()
            .and_then(|mut c| {
                redis::cmd("HGET")
                    .arg("sightline:presence:g1:seen")
                    .arg("bob")
                    .query(&mut c)
                    .ok()
            });
        if v == Some(9) && a.healthy() {
            break;
        }
        assert!(
            Instant::now() < end,
            "caught up: {v:?}, healthy {}",
            a.healthy()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let problems = a.take_problems();
    assert!(
        problems.iter().any(|p| p.contains("is back")),
        "{problems:?}"
    );
}

#[test]
fn a_stranger_has_one_id_on_two_nodes_and_a_local_one_without_redis() {
    let redis = RedisServer::start(&[]);
    let url = redis.url(None);
    let ttl = Duration::from_secs(60);
    let (a, b) = (
        Mutex::new(UnknownRegistry::new("unknown-", ttl)),
        Mutex::new(UnknownRegistry::new("unknown-", ttl)),
    );
    for r in [&a, &b] {
        assert!(
            r.lock()
                .unwrap()
                .join("fm", ttl, Some((&url, "k")))
                .is_none()
        );
    }
    let e = sightline_core::embed::l2_normalised(&[1.0, 0.2, 0.1, 0.0]);
    let near = sightline_core::embed::l2_normalised(&[1.0, 0.25, 0.1, 0.02]);
    let id = |r: &Mutex<UnknownRegistry>, v: &[f32]| match UnknownRegistry::assign_within(
        r,
        v,
        0.9,
        Duration::from_secs(2),
    ) {
        Assignment::Known(id) => id,
        Assignment::Pending(t) => {
            let end = Instant::now() + RESOLVE_TIMEOUT * 2;
            loop {
                if let Some(id) = r.lock().unwrap().poll(t, Instant::now()) {
                    break id;
                }
                assert!(Instant::now() < end);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let ia = id(&a, &e);
    assert_eq!(ia, "unknown-1");
    assert_eq!(id(&b, &near), ia, "node b finds node a's stranger");
    // Another element joining with another TTL is told the registry's settings stay.
    let w = a
        .lock()
        .unwrap()
        .join("fm2", Duration::from_secs(5), Some((&url, "k")))
        .unwrap();
    assert!(
        w.contains("fm2") && w.contains("fm") && w.contains("unknown-ttl"),
        "{w}"
    );
    // Redis unreachable: a local id, at once or after RESOLVE_TIMEOUT.
    let c = Mutex::new(UnknownRegistry::new("unknown-", ttl));
    let dead = format!("redis://127.0.0.1:{}/", sightline_testkit::free_port());
    c.lock().unwrap().join("fm", ttl, Some((&dead, "k")));
    let t = Instant::now();
    let local = id(&c, &e);
    assert!(local.starts_with("unknown-local-"), "{local}");
    assert!(
        t.elapsed() < RESOLVE_TIMEOUT * 2 + Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
}
