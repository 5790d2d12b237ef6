//! The Postgres wire door, through real clients: Debian's `psql` and `psycopg` from PyPI
//! (`tests/pg_clients/psycopg_check.py`, run by the test venv's Python, `TEST_PYTHON`).
//! Logins, isolation (joins, subqueries, CTEs, errors, live tables), read-only refusals, error
//! positions and SQLSTATEs, parameters, the row limit, cancel.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fleetflow_query::pgwire::server::STARTUP_DEADLINE;
use fleetflow_query::sql::bounds::MAX_EXPRESSION_DEPTH;
use fleetflow_query::{PgServer, SqlConfig, SqlEngine, serve_postgres};

#[path = "support/history_fixture.rs"]
mod history_fixture;
#[path = "support/live_vehicle.rs"]
mod live_vehicle;
#[path = "support/test_python.rs"]
mod test_python;
use history_fixture::{ACME, ADMIN, GLOBEX, History, MAX_ROWS, history};
use live_vehicle::live_store;
use test_python::python;

/// A Postgres listener over a synthetic history and a live store, on its own runtime.
struct Server {
    addr: SocketAddr,
    _history: History,
    _runtime: tokio::runtime::Runtime,
}

fn server(name: &str) -> Server {
    server_with(name, |_| {})
}

/// [`server`] with the engine's configuration changed by `configure`.
fn server_with(name: &str, configure: impl FnOnce(&mut SqlConfig)) -> Server {
    let history = history(&format!("pg-{name}"), Some(live_store()));
    let mut config = history.engine.config().clone();
    configure(&mut config);
    let engine = SqlEngine::new(&history.dir, config, Some(live_store())).expect("engine");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = PgServer::new(engine, history.tenants.clone());
    runtime.spawn(serve_postgres(
        listener,
        Arc::new(server),
        std::future::pending(),
    ));
    Server {
        addr,
        _history: history,
        _runtime: runtime,
    }
}

/// `psql -c sql` as `user` with `password`: unaligned, tuples only, `|`-separated.
fn psql_command(server: &Server, user: &str, password: &str, sql: &str) -> Command {
    let mut command = Command::new("psql");
    command
        .arg(format!(
            "host={} port={} user={user} dbname=fleetflow sslmode=disable connect_timeout=10",
            server.addr.ip(),
            server.addr.port()
        ))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", password);
    command
}

fn psql(server: &Server, user: &str, password: &str, sql: &str) -> Output {
    psql_command(server, user, password, sql)
        .output()
        .expect("psql runs (Debian's postgresql-client; scripts/test installs it)")
}

fn ok(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "psql succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn psql_logs_in_with_a_token_and_sees_its_company_only() {
    let s = server("login");
    assert_eq!(
        ok(&psql(
            &s,
            "acme",
            ACME,
            "SELECT DISTINCT company FROM positions ORDER BY 1"
        )),
        ["acme"]
    );
    assert_eq!(
        ok(&psql(
            &s,
            "admin",
            ADMIN,
            "SELECT DISTINCT company FROM positions ORDER BY 1"
        )),
        ["acme", "globex"]
    );
    // A wrong token, another company's token, and the admin token under a company's name.
    for (user, password) in [("acme", "nope"), ("acme", GLOBEX), ("acme", ADMIN)] {
        let error = failed(&psql(&s, user, password, "SELECT 1"));
        assert!(
            error.contains("FATAL")
                && error
                    .to_lowercase()
                    .contains("password authentication failed"),
            "{user}/{password}: {error}"
        );
    }
}

#[test]
fn psql_cannot_reach_another_company_through_any_query_shape() {
    let s = server("isolation");
    for sql in [
        "SELECT count(*) FROM positions WHERE company = 'globex'",
        "SELECT count(*) FROM positions p JOIN trips t ON p.vehicle = t.vehicle WHERE t.company <> 'acme'",
        "SELECT count(*) FROM (SELECT * FROM trips_latest WHERE company = 'globex') x",
        "WITH g AS (SELECT * FROM events WHERE company = 'globex') SELECT count(*) FROM g",
        "SELECT count(*) FROM positions WHERE vehicle IN (SELECT vehicle FROM positions WHERE company = 'globex')",
        "SELECT count(*) FROM errors WHERE company IS DISTINCT FROM 'acme'",
        "SELECT count(*) FROM live_vehicles WHERE company = 'globex'",
        "SELECT count(*) FROM live_summary WHERE company <> 'acme'",
    ] {
        assert_eq!(ok(&psql(&s, "acme", ACME, sql)), ["0"], "{sql}");
    }
    assert_eq!(
        ok(&psql(
            &s,
            "acme",
            ACME,
            "SELECT count(*) FROM live_vehicles"
        )),
        ["2"]
    );
}

#[test]
fn psql_writes_are_refused_as_read_only() {
    let s = server("read-only");
    for sql in [
        "INSERT INTO positions SELECT * FROM positions",
        "DELETE FROM trips",
        "DROP TABLE trips",
        "CREATE TABLE x AS SELECT 1",
        "COPY trips TO '/tmp/stolen.parquet'",
        "SELECT * FROM read_parquet('/etc/passwd')",
    ] {
        let error = failed(&psql(&s, "admin", ADMIN, sql));
        assert!(error.contains("ERROR"), "{sql}: {error}");
    }
    let error = failed(&psql(&s, "admin", ADMIN, "DROP TABLE trips"));
    assert!(error.contains("read-only"), "{error}");
}

#[test]
fn psql_points_at_the_error_and_runs_statement_lists() {
    let s = server("errors");
    let error = failed(&psql(
        &s,
        "acme",
        ACME,
        "SELECT vehicle, nope FROM positions",
    ));
    // psql draws the caret from the position the server sent.
    assert!(error.contains("LINE 1:") && error.contains('^'), "{error}");
    // psql prints the command tags of the transaction commands, as with a real server.
    assert_eq!(
        ok(&psql(
            &s,
            "acme",
            ACME,
            "BEGIN; SELECT 1 AS a; SELECT 2; COMMIT"
        )),
        ["BEGIN", "1", "2", "COMMIT"]
    );
    let error = failed(&psql(&s, "admin", ADMIN, "SELECT * FROM positions"));
    assert!(
        error.contains(&format!("more than {MAX_ROWS} rows")),
        "{error}"
    );
}

#[test]
fn psql_lists_tables_and_views_and_answers_what_clients_ask() {
    let s = server("catalog");
    // `\dt` and `\dv` are psql's own catalog queries, run as a company.
    assert_eq!(
        ok(&psql(&s, "acme", ACME, "\\dt")),
        [
            "public|company_daily_changes|table|fleetflow",
            "public|company_hourly_changes|table|fleetflow",
            "public|errors|table|fleetflow",
            "public|events|table|fleetflow",
            "public|geofence_visits|table|fleetflow",
            "public|positions|table|fleetflow",
            "public|trips|table|fleetflow",
            "public|vehicle_daily_changes|table|fleetflow",
            "public|vehicle_hourly_changes|table|fleetflow",
        ]
    );
    let views = ok(&psql(&s, "acme", ACME, "\\dv"));
    assert!(
        views.contains(&"public|trips_latest|view|fleetflow".to_owned())
            && views.contains(&"public|geofence_visits_latest|view|fleetflow".to_owned())
            && views.contains(&"public|vehicle_daily|view|fleetflow".to_owned())
            && views.contains(&"public|live_vehicles|view|fleetflow".to_owned()),
        "{views:?}"
    );
    let databases = ok(&psql(&s, "acme", ACME, "\\l"));
    assert!(
        databases.len() == 1 && databases[0].starts_with("fleetflow|fleetflow|UTF8|"),
        "{databases:?}"
    );
    assert_eq!(
        ok(&psql(
            &s,
            "acme",
            ACME,
            "SELECT current_database(), current_schema(), current_setting('server_version_num')"
        )),
        ["fleetflow|public|160000"]
    );
    assert_eq!(ok(&psql(&s, "acme", ACME, "SHOW DateStyle")), ["ISO, MDY"]);
    // An empty statement, as drivers send to ping, is answered as Postgres answers it.
    assert!(ok(&psql(&s, "acme", ACME, ";")).is_empty());
    // The catalog holds names and types, no company's rows, and is as read-only as the rest.
    let error = failed(&psql(&s, "admin", ADMIN, "DROP TABLE pg_catalog.pg_class"));
    assert!(error.contains("read-only"), "{error}");
}

#[test]
fn psql_ctrl_c_cancels_the_running_query() {
    let s = server("cancel");
    // A hundred billion rows from a generator: it runs until cancelled (or, if cancel were
    // broken, hits the timeout, whose message differs). The generator yields between batches,
    // so the cancelled task stops at once and the query threads are free for the next query.
    let slow = "SELECT sum(value) FROM generate_series(1, 100000000000)";
    let child = psql_command(&s, "admin", ADMIN, slow)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    std::thread::sleep(Duration::from_secs(2));
    // What Ctrl-C does: psql sends a cancel request on a second connection.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let error = failed(&child.wait_with_output().expect("psql exits"));
    assert!(
        error.contains("canceling statement due to user request"),
        "{error}"
    );
    // The connection's next query (a new psql here) is served as usual.
    assert_eq!(ok(&psql(&s, "admin", ADMIN, "SELECT 1")), ["1"]);
}

#[test]
fn psycopg_queries_with_parameters_in_text_and_binary() {
    let s = server("psycopg");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pg_clients/psycopg_check.py");
    let output = Command::new(python())
        .arg(script)
        .args(["--host", &s.addr.ip().to_string()])
        .args(["--port", &s.addr.port().to_string()])
        .args(["--acme-token", ACME, "--admin-token", ADMIN])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 35: a statement that once overflowed the query thread's stack (and aborted the
/// process) is answered, one deeper than the bound is refused with a clear error, and the
/// server lives on.
#[test]
fn psql_deep_expressions_are_answered_or_refused_and_the_server_lives() {
    let s = server("depth");
    let plus = format!("SELECT {}1", "1+".repeat(999));
    assert_eq!(ok(&psql(&s, "acme", ACME, &plus)), ["1000"]);
    let terms: Vec<String> = (0..1_000).map(|i| format!("vehicle = 'v{i:04}'")).collect();
    let or_chain = format!(
        "SELECT count(*) > 0 FROM positions WHERE {}",
        terms.join(" OR ")
    );
    assert_eq!(ok(&psql(&s, "acme", ACME, &or_chain)), ["t"]);
    let deep = format!("SELECT {}1", "1+".repeat(MAX_EXPRESSION_DEPTH + 10));
    let error = failed(&psql(&s, "acme", ACME, &deep));
    assert!(error.contains("expression nests too deep"), "{error}");
    assert_eq!(ok(&psql(&s, "acme", ACME, "SELECT 1")), ["1"]);
}

/// Issue 35: clients that connect and never log in take no slot and are closed at the
/// start-up deadline; the slots count logged-in connections, and one past them is refused.
#[test]
fn silent_connections_neither_block_logins_nor_stay_open() {
    let s = server_with("silent", |c| c.postgres_connections = 2);
    let silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(s.addr).expect("connect"))
        .collect();
    assert_eq!(ok(&psql(&s, "acme", ACME, "SELECT 1")), ["1"]);
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(STARTUP_DEADLINE * 3))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert_eq!(
        first
            .read(&mut byte)
            .expect("closed by the server, not timed out"),
        0
    );

    // Two logged-in sessions hold both slots (each runs until cancelled); a third login is
    // refused as Postgres does (53300), and served again once one ends.
    let slow = "SELECT sum(value) FROM generate_series(1, 100000000000)";
    let hold = || {
        psql_command(&s, "admin", ADMIN, slow)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql runs")
    };
    let mut holders: Vec<std::process::Child> = (0..2).map(|_| hold()).collect();
    // Once both have logged in, a third login is refused. A holder whose login met a probe in
    // the other slot was itself refused and has exited: start it again.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let error = loop {
        for holder in &mut holders {
            if holder.try_wait().expect("psql status").is_some() {
                *holder = hold();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let output = psql(&s, "acme", ACME, "SELECT 1");
        if !output.status.success() {
            break String::from_utf8_lossy(&output.stderr).into_owned();
        }
        assert!(std::time::Instant::now() < deadline, "logins never refused");
    };
    assert!(error.contains("too many connections"), "{error}");
    for holder in &mut holders {
        holder.kill().expect("kill psql");
        holder.wait().expect("psql exits");
    }
    // A killed client's query runs on until its timeout (30 s) before its connection ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let output = psql(&s, "acme", ACME, "SELECT 1");
        if output.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slots never freed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A start-up message for `user` followed by its password message, as libpq sends them.
fn login_bytes(user: &str, password: &str) -> Vec<u8> {
    let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [("user", user), ("database", "fleetflow")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut bytes = i32::try_from(body.len() + 4)
        .expect("small")
        .to_be_bytes()
        .to_vec();
    bytes.extend(body);
    bytes.push(b'p');
    bytes.extend_from_slice(
        &i32::try_from(password.len() + 5)
            .expect("small")
            .to_be_bytes(),
    );
    bytes.extend_from_slice(password.as_bytes());
    bytes.push(0);
    bytes
}

/// Issue 35: seeded random and mutated start-ups (SSL requests, cancel requests, lengths,
/// parameters, passwords) never panic a connection's task, and the server goes on serving.
fn fuzz_startup(cases: usize) {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Connections are served on the runtime's workers; tests' own threads are not counted.
        if std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("tokio-runtime-worker"))
        {
            PANICS.fetch_add(1, Ordering::Relaxed);
        }
        previous(info);
    }));
    let s = server("fuzz-startup");
    let seeds = [
        login_bytes("acme", ACME),
        login_bytes("admin", ADMIN),
        login_bytes("acme", "wrong"),
        // SSLRequest, then a start-up.
        [
            &8_i32.to_be_bytes()[..],
            &80_877_103_i32.to_be_bytes()[..],
            &login_bytes("acme", ACME),
        ]
        .concat(),
        // CancelRequest.
        [
            &16_i32.to_be_bytes()[..],
            &80_877_102_i32.to_be_bytes()[..],
            &[0u8; 8][..],
        ]
        .concat(),
    ];
    let mut rng = SmallRng::seed_from_u64(35);
    for case in 0..cases {
        let mut bytes = if rng.random_ratio(1, 8) {
            (0..rng.random_range(0..128))
                .map(|_| rng.random())
                .collect()
        } else {
            seeds[case % seeds.len()].clone()
        };
        for _ in 0..rng.random_range(1..5) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes[at] = rng.random(),
                1 => bytes.insert(at, rng.random()),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        let Ok(mut socket) = TcpStream::connect(s.addr) else {
            continue;
        };
        let _ = socket.write_all(&bytes);
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
    }
    assert_eq!(
        PANICS.load(Ordering::Relaxed),
        0,
        "a connection task panicked"
    );
    assert_eq!(ok(&psql(&s, "acme", ACME, "SELECT 1")), ["1"]);
}

#[test]
fn random_startups_never_panic_and_the_server_serves_on() {
    fuzz_startup(2_000);
}

#[test]
#[ignore = "1,000,000 connections: cargo test --release -p fleetflow-query --test pg_wire -- --ignored"]
fn a_million_random_startups_never_panic() {
    fuzz_startup(1_000_000);
}
