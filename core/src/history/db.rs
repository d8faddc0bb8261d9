//! The history database: SQLite (rusqlite, SQLite built in) or PostgreSQL (the `postgres`
//! crate, TLS through rustls), one schema created and upgraded by refinery's migrations
//! (`core/migrations/history/`). SQL is written once with `$1`, `$2`, … parameters and
//! runs on both.

use super::heat::{self, Cells};
use super::rows::{Row, Table};
use crate::secrets::{redact_url, scrub_url_in};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations/history");
}

/// How long a PostgreSQL connection may take, and a statement (a batch, a query, a purge).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A value of a row or a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    I(i64),
    F(f64),
    T(String),
}

impl Val {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::I(v) => Some(*v),
            Val::F(v) => Some(*v as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::I(v) => Some(*v as f64),
            Val::F(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::T(s) => Some(s),
            _ => None,
        }
    }

    /// As JSON (for the query results).
    pub fn json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::I(v) => (*v).into(),
            Val::F(v) => {
                serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into)
            }
            Val::T(s) => s.clone().into(),
        }
    }
}

/// Where the history is: `sqlite:PATH` (relative or absolute; `sqlite:///abs/path` too) or
/// `postgres://[user[:password]@]host[:port]/db[?sslmode=require&sslrootcert=ca.pem]`
/// (`postgresql://` too).
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(raw: &str) -> Result<Location, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.ends_with('/') {
                return Err(format!(
                    "history database {raw}: needs a file (sqlite:PATH, sqlite:///abs/path)"
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let u = url::Url::parse(raw)
                .map_err(|e| format!("history database {}: {e}", redact_url(raw)))?;
            if u.host_str().is_none_or(str::is_empty) {
                return Err(format!("history database {}: no host", redact_url(raw)));
            }
            return Ok(Location::Postgres(raw.to_string()));
        }
        Err(format!(
            "history database {}: not sqlite:PATH or postgres://…",
            if raw.contains("://") {
                redact_url(raw)
            } else {
                raw.to_string()
            }
        ))
    }

    /// For messages: the path, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite:{}", p.display()),
            Location::Postgres(u) => redact_url(u),
        }
    }

    /// The secrets of the location (to scrub from errors).
    pub fn url(&self) -> Option<&str> {
        match self {
            Location::Sqlite(_) => None,
            Location::Postgres(u) => Some(u),
        }
    }
}

/// PostgreSQL statements prepared once per connection: (table, rows per statement).
type Prepared = std::collections::HashMap<(&'static str, usize), postgres::Statement>;

enum Conn {
    Sqlite(rusqlite::Connection),
    /// The client, and its prepared multi-row INSERTs by (table, rows).
    Postgres(Box<postgres::Client>, Prepared),
}

/// An open history database, its schema up to date.
pub struct Db {
    conn: Conn,
    location: Location,
}

impl Db {
    /// Opens (creating an SQLite file and its directory) and migrates. Errors name the
    /// database without its password.
    pub fn open(location: &Location) -> Result<Db, String> {
        let shown = location.display();
        let conn = match location {
            Location::Sqlite(path) => Conn::Sqlite(open_sqlite(path)?),
            Location::Postgres(url) => {
                Conn::Postgres(Box::new(connect_postgres(url)?), Default::default())
            }
        };
        let mut db = Db {
            conn,
            location: location.clone(),
        };
        let runner = embedded::migrations::runner();
        let migrated = match &mut db.conn {
            Conn::Sqlite(c) => runner.run(c).map(|_| ()),
            Conn::Postgres(c, _) => runner.run(c.as_mut()).map(|_| ()),
        };
        migrated.map_err(|e| db.scrub(&format!("history database {shown}: migration: {e}")))?;
        db.finish_jobs()?;
        Ok(db)
    }

    /// Work a migration left (`history_jobs`): the heat cells of the points written before
    /// V5, counted hour by hour, each hour's cells replaced in one transaction (so an
    /// interrupted job is simply done again).
    fn finish_jobs(&mut self) -> Result<(), String> {
        let jobs = self.query("SELECT name FROM history_jobs", &[])?;
        if !jobs.iter().any(|r| r[0].as_str() == Some("heat-cells")) {
            return Ok(());
        }
        let maps = self.query(
            "SELECT map, MIN(t_ms), MAX(t_ms) FROM trajectory_points GROUP BY map",
            &[],
        )?;
        for m in &maps {
            let (Some(map), Some(first), Some(last)) =
                (m[0].as_str(), m[1].as_i64(), m[2].as_i64())
            else {
                continue;
            };
            let mut hour = heat::hour_of(first);
            while hour <= last {
                let next = hour.saturating_add(heat::HOUR_MS);
                let points = self.query(
                    "SELECT t_ms, x, y FROM trajectory_points WHERE map = $1 AND t_ms >= $2 AND t_ms < $3",
                    &[Val::T(map.to_string()), Val::I(hour), Val::I(next)],
                )?;
                let mut cells = Cells::default();
                for p in &points {
                    if let (Some(t), Some(x), Some(y)) =
                        (p[0].as_i64(), p[1].as_f64(), p[2].as_f64())
                    {
                        cells.add(map, t, x, y, 1);
                    }
                }
                let mut statements = vec![(
                    "DELETE FROM heat_cells WHERE map = $1 AND hour_ms = $2",
                    vec![Val::T(map.to_string()), Val::I(hour)],
                )];
                let upsert = heat_upsert_sql(1);
                statements.extend(
                    cells
                        .0
                        .into_iter()
                        .map(|c| (upsert.as_str(), heat_row(c).to_vec())),
                );
                self.transaction(&statements)?;
                if next == i64::MAX {
                    break;
                }
                hour = next;
            }
        }
        self.execute("DELETE FROM history_jobs WHERE name = 'heat-cells'", &[])?;
        Ok(())
    }

    fn scrub(&self, text: &str) -> String {
        match self.location.url() {
            Some(u) => scrub_url_in(text, u),
            None => text.to_string(),
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> String {
        self.scrub(&format!(
            "history database {}: {what}: {e}",
            self.location.display()
        ))
    }

    /// Inserts `rows` in one transaction; a row whose key is already there is skipped (a
    /// replayed event). Returns how many rows were new.
    pub fn insert(&mut self, rows: &[Row]) -> Result<u64, String> {
        let mut by_table: Vec<(Table, Vec<&Row>)> = Vec::new();
        for r in rows {
            match by_table.iter_mut().find(|(t, _)| *t == r.table) {
                Some((_, v)) => v.push(r),
                None => by_table.push((r.table, vec![r])),
            }
        }
        let result = match &mut self.conn {
            Conn::Sqlite(c) => insert_sqlite(c, &by_table),
            Conn::Postgres(c, prepared) => insert_postgres(c, prepared, &by_table),
        };
        result.map_err(|e| self.err("insert", e))
    }

    /// Runs a query; every row as values.
    pub fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let result = match &mut self.conn {
            Conn::Sqlite(c) => query_sqlite(c, sql, params),
            Conn::Postgres(c, _) => query_postgres(c, sql, params),
        };
        result.map_err(|e| self.err("query", e))
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, String> {
        let result = match &mut self.conn {
            Conn::Sqlite(c) => c
                .execute(&sqlite_sql(sql), rusqlite::params_from_iter(params.iter()))
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Conn::Postgres(c, _) => c
                .execute(sql, &pg_params(params))
                .map_err(|e| e.to_string()),
        };
        result.map_err(|e| self.err("statement", e))
    }

    /// Runs `statements` in one transaction (all or nothing); rows changed by each.
    pub fn transaction(&mut self, statements: &[(&str, Vec<Val>)]) -> Result<Vec<u64>, String> {
        let result = match &mut self.conn {
            Conn::Sqlite(c) => (|| {
                let tx = c.transaction()?;
                let mut n = Vec::new();
                for (sql, p) in statements {
                    n.push(
                        tx.execute(&sqlite_sql(sql), rusqlite::params_from_iter(p.iter()))? as u64,
                    );
                }
                tx.commit()?;
                Ok(n)
            })()
            .map_err(|e: rusqlite::Error| e.to_string()),
            Conn::Postgres(c, _) => (|| {
                let mut tx = c.transaction()?;
                let mut n = Vec::new();
                for (sql, p) in statements {
                    n.push(tx.execute(*sql, &pg_params(p))?);
                }
                tx.commit()?;
                Ok(n)
            })()
            .map_err(|e: postgres::Error| e.to_string()),
        };
        result.map_err(|e| self.err("transaction", e))
    }

    /// The size of the database on disk, bytes (SQLite: the file; PostgreSQL: the database).
    pub fn size_bytes(&mut self) -> Result<u64, String> {
        let sql = match self.conn {
            Conn::Sqlite(_) => {
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            }
            Conn::Postgres(..) => "SELECT pg_database_size(current_database())",
        };
        let rows = self.query(sql, &[])?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(Val::as_i64)
            .unwrap_or(0) as u64)
    }
}

fn open_sqlite(path: &Path) -> Result<rusqlite::Connection, String> {
    let fail =
        |e: &dyn std::fmt::Display| format!("history database sqlite:{}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let c = rusqlite::Connection::open(path).map_err(|e| fail(&e))?;
    // WAL: readers (the CLI, the API) never wait for the writer; NORMAL sync is durable
    // at each checkpoint and crash-safe (the spool holds what was not yet written).
    c.busy_timeout(Duration::from_secs(10))
        .map_err(|e| fail(&e))?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| fail(&e))?;
    c.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| fail(&e))?;
    // 64 MiB of page cache (the default is 2 MiB): index inserts at random keys (global id,
    // label) stay in memory instead of reading pages back.
    c.pragma_update(None, "cache_size", -65_536)
        .map_err(|e| fail(&e))?;
    // Checkpoint the WAL every ~40 MB instead of every 4 MB: fewer copies of hot index pages.
    c.pragma_update(None, "wal_autocheckpoint", 10_000)
        .map_err(|e| fail(&e))?;
    Ok(c)
}

/// Connects with [`CONNECT_TIMEOUT`], TLS by `sslmode` (`disable`, `prefer` = the crate's
/// default, `require`), trusting the system's CAs and `sslrootcert` (a PEM file).
fn connect_postgres(raw: &str) -> Result<postgres::Client, String> {
    let shown = redact_url(raw);
    let fail =
        |e: &dyn std::fmt::Display| scrub_url_in(&format!("history database {shown}: {e}"), raw);
    let mut u = url::Url::parse(raw).map_err(|e| fail(&e))?;
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    let rootcert = pairs
        .iter()
        .find(|(k, _)| k == "sslrootcert")
        .map(|(_, v)| PathBuf::from(v));
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs.iter().filter(|(k, _)| k != "sslrootcert") {
            q.append_pair(k, v);
        }
    }
    let plain = u.to_string();
    let plain = plain.trim_end_matches('?');
    let mut cfg: postgres::Config = plain.parse().map_err(|e| fail(&e))?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    cfg.keepalives_idle(Duration::from_secs(30));
    cfg.options(&format!(
        "-c statement_timeout={}",
        STATEMENT_TIMEOUT.as_millis()
    ));
    if cfg.get_application_name().is_none() {
        cfg.application_name("sightline");
    }
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(rootcert.as_deref())?);
    cfg.connect(tls).map_err(|e| fail(&e))
}

fn tls_config(rootcert: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    if let Ok(pem) = std::fs::read(&system) {
        for c in CertificateDer::pem_slice_iter(&pem).flatten() {
            let _ = roots.add(c);
        }
    }
    if let Some(ca) = rootcert {
        let pem = std::fs::read(ca).map_err(|e| {
            format!(
                "history database: cannot read sslrootcert {}: {e}",
                ca.display()
            )
        })?;
        for c in CertificateDer::pem_slice_iter(&pem).flatten() {
            roots
                .add(c)
                .map_err(|e| format!("history database: sslrootcert {}: {e}", ca.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `$N` parameters as SQLite's `?N` (SQLite would take `$1` for a name).
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::I(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Val::F(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Val::T(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// `INSERT INTO name (columns) VALUES (…), … tail` for `rows` rows, parameters `$1…`.
fn multi_insert(name: &str, cols: &[&str], rows: usize, tail: &str) -> String {
    let mut sql = format!("INSERT INTO {name} ({}) VALUES ", cols.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            n += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

fn insert_sql(table: Table, rows: usize) -> String {
    multi_insert(
        table.name(),
        table.columns(),
        rows,
        "ON CONFLICT DO NOTHING",
    )
}

/// Adds to `rows` heat cells (both databases: an upsert on the primary key; the cells of one
/// statement are distinct).
fn heat_upsert_sql(rows: usize) -> String {
    multi_insert(
        "heat_cells",
        &["map", "hour_ms", "cx", "cy", "n"],
        rows,
        "ON CONFLICT (map, hour_ms, cx, cy) DO UPDATE SET n = heat_cells.n + excluded.n",
    )
}

/// A heat cell's values, as [`heat_upsert_sql`] takes them.
fn heat_row(((map, hour, cx, cy), n): ((String, i64, i64, i64), i64)) -> [Val; 5] {
    [Val::T(map), Val::I(hour), Val::I(cx), Val::I(cy), Val::I(n)]
}

/// The columns of a map point the heat cells are counted from: map, t_ms, x, y.
fn point_columns() -> [usize; 4] {
    let cols = Table::TrajectoryPoints.columns();
    ["map", "t_ms", "x", "y"].map(|c| cols.iter().position(|n| *n == c).expect("column"))
}

/// Counts an inserted map point (its values at `[map, t_ms, x, y]`) in `cells`.
fn count_point(cells: &mut Cells, vals: &[Val], [m, t, x, y]: [usize; 4]) {
    if let (Some(map), Some(t), Some(x), Some(y)) = (
        vals[m].as_str(),
        vals[t].as_i64(),
        vals[x].as_f64(),
        vals[y].as_f64(),
    ) {
        cells.add(map, t, x, y, 1);
    }
}

fn insert_sqlite(
    c: &mut rusqlite::Connection,
    by_table: &[(Table, Vec<&Row>)],
) -> Result<u64, String> {
    let tx = c.transaction().map_err(|e| e.to_string())?;
    let mut new = 0;
    let mut cells = Cells::default();
    let point = point_columns();
    for (table, rows) in by_table {
        // One prepared statement per table, run per row: SQLite's fastest way.
        let mut st = tx
            .prepare_cached(&sqlite_sql(&insert_sql(*table, 1)))
            .map_err(|e| e.to_string())?;
        for r in rows {
            let n = st
                .execute(rusqlite::params_from_iter(r.vals.iter()))
                .map_err(|e| e.to_string())? as u64;
            // The points inserted (not those already there) are counted in the heat cells.
            if n > 0 && *table == Table::TrajectoryPoints {
                count_point(&mut cells, &r.vals, point);
            }
            new += n;
        }
    }
    if !cells.is_empty() {
        let mut st = tx
            .prepare_cached(&sqlite_sql(&heat_upsert_sql(1)))
            .map_err(|e| e.to_string())?;
        for cell in cells.0 {
            st.execute(rusqlite::params_from_iter(heat_row(cell).iter()))
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(new)
}

/// Rows per multi-row INSERT: PostgreSQL allows 65535 parameters per statement.
fn pg_chunk(table: Table) -> usize {
    (1000).min(65_535 / table.columns().len())
}

fn insert_postgres(
    c: &mut postgres::Client,
    prepared: &mut Prepared,
    by_table: &[(Table, Vec<&Row>)],
) -> Result<u64, String> {
    type Param<'a> = &'a (dyn postgres::types::ToSql + Sync);
    let mut tx = c.transaction().map_err(|e| e.to_string())?;
    // Full chunks recur; a few odd sizes are kept too (bounded).
    let mut statement =
        |tx: &mut postgres::Transaction, key: (&'static str, usize), sql: &dyn Fn() -> String| {
            if let Some(st) = prepared.get(&key) {
                return Ok(st.clone());
            }
            let st = tx.prepare(&sql()).map_err(|e| e.to_string())?;
            if prepared.len() < 64 {
                prepared.insert(key, st.clone());
            }
            Ok::<_, String>(st)
        };
    let mut new = 0;
    let mut cells = Cells::default();
    for (table, rows) in by_table {
        for chunk in rows.chunks(pg_chunk(*table)) {
            let params: Vec<Param> = chunk
                .iter()
                .flat_map(|r| r.vals.iter())
                .map(|v| v as Param)
                .collect();
            let key = (table.name(), chunk.len());
            if *table != Table::TrajectoryPoints {
                let st = statement(&mut tx, key, &|| insert_sql(*table, chunk.len()))?;
                new += tx.execute(&st, &params).map_err(|e| e.to_string())?;
                continue;
            }
            // The points inserted (not those already there) are counted in the heat cells.
            let st = statement(&mut tx, key, &|| {
                format!(
                    "{} RETURNING map, t_ms, x, y",
                    insert_sql(*table, chunk.len())
                )
            })?;
            let inserted = tx.query(&st, &params).map_err(|e| e.to_string())?;
            for r in &inserted {
                cells.add(r.get(0), r.get(1), r.get(2), r.get(3), 1);
            }
            new += inserted.len() as u64;
        }
    }
    let cells: Vec<[Val; 5]> = cells.0.into_iter().map(heat_row).collect();
    for chunk in cells.chunks(1000) {
        let st = statement(&mut tx, ("heat_cells", chunk.len()), &|| {
            heat_upsert_sql(chunk.len())
        })?;
        let params: Vec<Param> = chunk.iter().flatten().map(|v| v as Param).collect();
        tx.execute(&st, &params).map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(new)
}

fn query_sqlite(
    c: &mut rusqlite::Connection,
    sql: &str,
    params: &[Val],
) -> Result<Vec<Vec<Val>>, String> {
    use rusqlite::types::ValueRef;
    let mut st = c
        .prepare_cached(&sqlite_sql(sql))
        .map_err(|e| e.to_string())?;
    let n = st.column_count();
    let mut rows = st
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match r.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(v) => Val::I(v),
                ValueRef::Real(v) => Val::F(v),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Val::T(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(vals);
    }
    Ok(out)
}

impl postgres::types::ToSql for Val {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match self {
            Val::Null => Ok(postgres::types::IsNull::Yes),
            Val::I(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Val::I(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Val::I(v) if *ty == Type::FLOAT8 => (*v as f64).to_sql(ty, out),
            Val::I(v) => v.to_sql(ty, out),
            Val::F(v) if *ty == Type::FLOAT4 => (*v as f32).to_sql(ty, out),
            Val::F(v) => v.to_sql(ty, out),
            Val::T(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn pg_params(params: &[Val]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn query_postgres(
    c: &mut postgres::Client,
    sql: &str,
    params: &[Val],
) -> Result<Vec<Vec<Val>>, String> {
    use postgres::types::Type;
    let rows = c
        .query(sql, &pg_params(params))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut vals = Vec::with_capacity(r.len());
        for (i, col) in r.columns().iter().enumerate() {
            let ty = col.type_();
            let v = if *ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::I))
            } else if *ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)
                    .map(|v| v.map(|v| Val::I(v as i64)))
            } else if *ty == Type::INT2 {
                r.try_get::<_, Option<i16>>(i)
                    .map(|v| v.map(|v| Val::I(v as i64)))
            } else if *ty == Type::FLOAT8 {
                r.try_get::<_, Option<f64>>(i).map(|v| v.map(Val::F))
            } else if *ty == Type::FLOAT4 {
                r.try_get::<_, Option<f32>>(i)
                    .map(|v| v.map(|v| Val::F(v as f64)))
            } else if *ty == Type::NUMERIC {
                // Only from aggregates over integers (SUM): read as text, parsed.
                r.try_get::<_, Option<String>>(i)
                    .map(|v| v.and_then(|s| s.parse::<f64>().ok()).map(Val::F))
            } else if *ty == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)
                    .map(|v| v.map(|b| Val::I(b as i64)))
            } else {
                r.try_get::<_, Option<String>>(i).map(|v| v.map(Val::T))
            };
            vals.push(v.map_err(|e| e.to_string())?.unwrap_or(Val::Null));
        }
        out.push(vals);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_show_no_password() {
        assert_eq!(
            Location::parse("sqlite:/var/lib/sl/history.db").unwrap(),
            Location::Sqlite("/var/lib/sl/history.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/sl/history.db").unwrap(),
            Location::Sqlite("/var/lib/sl/history.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:rel/h.db").unwrap(),
            Location::Sqlite("rel/h.db".into())
        );
        let pg = Location::parse("postgres://sl:s3cret@db.lan:5433/site?sslmode=require").unwrap();
        assert!(!pg.display().contains("s3cret"), "{}", pg.display());
        assert!(pg.display().contains("db.lan:5433"));
        let e = Location::parse("mysql://u:s3cret@h/db").unwrap_err();
        assert!(!e.contains("s3cret") && e.contains("not sqlite"), "{e}");
        assert!(Location::parse("sqlite:").is_err());
        assert!(Location::parse("postgres:///db").is_err());
    }

    #[test]
    fn dollar_parameters_become_sqlite_numbered_ones() {
        assert_eq!(
            sqlite_sql("SELECT a FROM t WHERE b = $2 AND c = $1 AND d = '$x'"),
            "SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = '$x'"
        );
        assert_eq!(
            insert_sql(Table::CameraEvents, 2),
            "INSERT INTO camera_events (stream, seq, t_ms, node, camera, grp, event) VALUES \
             ($1, $2, $3, $4, $5, $6, $7), ($8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING"
        );
    }
}
