//! The simulated world: a city's road grid ([`road_grid`]), trips planned on it ([`route`]),
//! second-by-second driving ([`motion`]), distances ([`geo`]), seeded hashing
//! ([`seed_mix`]) and the simulated clock ([`sim_clock`]). Pure: no I/O, no tasks.

pub mod geo;
pub mod motion;
pub mod road_grid;
pub mod route;
pub mod seed_mix;
pub mod sim_clock;
