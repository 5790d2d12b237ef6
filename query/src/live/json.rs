//! The JSON shapes of the live views, rendered from one [`LiveSnapshot`](fleetflow_live_store::store::LiveSnapshot) (so every part of an
//! answer is consistent with its `upto_ms`). Positions are degrees, distances metres, speeds
//! km/h, times epoch milliseconds.

use fleetflow_live_store::alerts::Alert;
use fleetflow_live_store::vehicles::VehicleEntry;
use fleetflow_live_store::{IgnitionState, Status, Trip};
use fleetflow_live_store::{Period, PeriodTotal};
use serde::Serialize;

/// One vehicle as every endpoint shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleView {
    pub company: String,
    pub vehicle: String,
    pub status: &'static str,
    /// When the status began: the first item of the current motion, or when the silence ran
    /// out for offline vehicles.
    pub status_since_ms: i64,
    pub ignition: &'static str,
    pub position: Option<PositionView>,
    pub open_trip: Option<TripView>,
    pub today: TotalView,
    pub week: TotalView,
    pub odometer_km: Option<f64>,
    /// The geofences it is inside now.
    pub geofences: Vec<InsideView>,
}

/// A geofence a vehicle is inside, and since when (the fix that entered).
#[derive(Debug, Clone, Serialize)]
pub struct InsideView {
    pub id: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PositionView {
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub time_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TripView {
    pub id: String,
    pub start_ms: i64,
    pub rule: &'static str,
    pub distance_m: f64,
    pub duration_s: f64,
    pub driving_s: f64,
    pub max_speed_kmh: f64,
    pub points: u32,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TotalView {
    pub distance_m: f64,
    pub driving_s: f64,
    pub trips: u32,
}

impl From<PeriodTotal> for TotalView {
    fn from(t: PeriodTotal) -> Self {
        TotalView {
            distance_m: t.distance_mm as f64 / 1000.0,
            driving_s: t.driving_ms as f64 / 1000.0,
            trips: t.trips,
        }
    }
}

pub fn ignition_str(i: IgnitionState) -> &'static str {
    match i {
        IgnitionState::On => "on",
        IgnitionState::Off => "off",
        IgnitionState::Unknown => "unknown",
    }
}

pub fn degrees(e7: i32) -> f64 {
    f64::from(e7) / 1e7
}

fn trip_view(vehicle: &str, t: &Trip) -> TripView {
    TripView {
        id: t.id(vehicle),
        start_ms: t.start_ms,
        rule: t.rule.as_str(),
        distance_m: t.distance_m(),
        duration_s: t.duration_ms() as f64 / 1000.0,
        driving_s: t.moving_ms as f64 / 1000.0,
        max_speed_kmh: f64::from(t.max_speed_dkmh) / 10.0,
        points: t.points,
    }
}

/// A vehicle's view, if it is served.
pub fn vehicle_view(entry: &VehicleEntry) -> Option<VehicleView> {
    let s = entry.live.as_ref()?;
    let (status, status_since_ms) = entry.status_since()?;
    let total = |period| entry.total(period).map(TotalView::from).unwrap_or_default();
    Some(VehicleView {
        company: entry.company().to_string(),
        vehicle: entry.vehicle().to_string(),
        status: status.as_str(),
        status_since_ms,
        ignition: ignition_str(s.ignition),
        position: s.fix.map(|f| PositionView {
            lat: degrees(f.lat_e7),
            lon: degrees(f.lon_e7),
            speed_kmh: f64::from(f.speed_dkmh) / 10.0,
            time_ms: f.time_ms,
        }),
        open_trip: s.open_trip.as_ref().map(|t| trip_view(entry.vehicle(), t)),
        today: total(Period::Today),
        week: total(Period::Week),
        odometer_km: s.odometer_m.map(|m| m as f64 / 1000.0),
        geofences: entry
            .geofences
            .iter()
            .map(|(id, since_ms)| InsideView {
                id: id.to_string(),
                since_ms: *since_ms,
            })
            .collect(),
    })
}

/// A company's counts (Monicar's all / engine on / engine off, and by status).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SummaryView {
    pub company: String,
    pub all: i64,
    pub engine_on: i64,
    pub engine_off: i64,
    pub ignition_unknown: i64,
    pub moving: i64,
    pub idle: i64,
    pub parked: i64,
    pub offline: i64,
}

impl SummaryView {
    pub fn add(&mut self, ignition: IgnitionState, status: Status, n: i64) {
        self.all += n;
        *match ignition {
            IgnitionState::On => &mut self.engine_on,
            IgnitionState::Off => &mut self.engine_off,
            IgnitionState::Unknown => &mut self.ignition_unknown,
        } += n;
        *match status {
            Status::Moving => &mut self.moving,
            Status::Idle => &mut self.idle,
            Status::Parked => &mut self.parked,
            Status::Offline => &mut self.offline,
        } += n;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub seq: u64,
    pub company: String,
    pub vehicle: String,
    pub kind: &'static str,
    pub time_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub value: Option<f64>,
    /// Geofence alerts: which geofence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geofence_id: Option<String>,
    /// Present (true) on an alert that takes back an earlier one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retraction: bool,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> Self {
        AlertView {
            seq: a.seq,
            company: a.company.to_string(),
            vehicle: a.vehicle.to_string(),
            kind: a.kind.as_str(),
            time_ms: a.time_ms,
            lat: a.pos.map(|p| degrees(p.0)),
            lon: a.pos.map(|p| degrees(p.1)),
            value: a.value,
            geofence_id: a.geofence.as_deref().map(str::to_owned),
            retraction: a.retraction,
        }
    }
}

/// One entry of a change answer: the vehicle's state now, or `null` when it left the view.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    pub company: String,
    pub vehicle: String,
    pub state: Option<VehicleView>,
}
