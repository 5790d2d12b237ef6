//! The dashboard in a real browser: `fleetflow run` with emulated vehicles, the page opened in
//! headless Chromium (Debian's, driven by playwright-core from `dashboard/tests`, installed by
//! `scripts/install-chromium`), signed in with a company's token. The script
//! (`dashboard/tests/dashboard_check.mjs`) checks that a wrong token is refused, vehicles
//! appear and move, live routes draw, the counts equal `/v1/live/summary`, a past route draws
//! and an unreachable API is reported; it saves a screenshot to
//! `target/test-artifacts/dashboard.png`.

mod support;

use std::path::Path;
use std::process::Command;

use support::{report_field, start_emulator, start_fleetflow, stop_emulator, temp_dir};

const COMPANY_TOKEN: &str = "dashboard-test-token";

#[test]
fn the_dashboard_shows_the_fleet_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("dashboard/tests/dashboard_check.mjs");
    assert!(
        root.join("dashboard/tests/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed: run scripts/install-chromium (scripts/test does)"
    );
    let data = temp_dir("dashboard");
    // The emulator's vehicles join company "default"; give it a token.
    let config = data.join("fleetflow.toml");
    std::fs::write(
        &config,
        format!(
            "[[companies]]\nid = \"default\"\nname = \"Emulated fleet\"\ntokens = [\"{COMPANY_TOKEN}\"]\n"
        ),
    )
    .expect("config");
    let ff = start_fleetflow(
        "run",
        &[
            "--data-dir",
            data.to_str().expect("utf8"),
            "--config",
            config.to_str().expect("utf8"),
        ],
        &[("FLEETFLOW_PIPELINE__FLUSH_SECS", "1")],
    );
    // Sends until the browser check is done (stopped below), however long the browser takes to
    // start and sign in: the check waits for vehicles to move. (A fixed 45 s once ran out first
    // on a loaded machine.)
    let emulator = start_emulator(ff.http, 30, 900);
    let artifacts = root.join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let shot = artifacts.join("dashboard.png");
    let output = Command::new("node")
        .arg(&script)
        .args(["check", &format!("http://{}/", ff.http), COMPANY_TOKEN])
        .arg(&shot)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the dashboard check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    let total = stop_emulator(emulator);
    assert_eq!(report_field(&total, "err"), 0, "{total}");
    assert!(
        ff.proc.terminate().success(),
        "fleetflow did not stop cleanly"
    );
}
