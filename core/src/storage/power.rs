//! The power policy (SPEC §6): a pure function from what the platform says
//! about the device to what background storage work may run now, with the
//! reason, so the app can show why nothing happens.

/// Thermal state as both platforms report it (iOS `ProcessInfo.ThermalState`,
/// Android `PowerManager.THERMAL_STATUS_*` folded onto these four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Thermal {
    Nominal,
    Fair,
    Serious,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    None,
    Metered,
    Unmetered,
}

/// The platform facts the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts {
    pub battery_percent: u8,
    pub charging: bool,
    pub thermal: Thermal,
    pub low_power_mode: bool,
    pub network: Network,
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub screen_on: bool,
}

impl DeviceFacts {
    /// A desktop or a simulated phone on a charger: mains power, cool,
    /// unmetered, with room to spare (the `watt` CLI and the devnet).
    pub fn plugged_in_desktop() -> DeviceFacts {
        DeviceFacts {
            battery_percent: 100,
            charging: true,
            thermal: Thermal::Nominal,
            low_power_mode: false,
            network: Network::Unmetered,
            free_bytes: u64::MAX / 4,
            total_bytes: u64::MAX / 2,
            screen_on: false,
        }
    }
}

/// What background work may run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerDecision {
    pub may_seal: bool,
    pub may_prove: bool,
    /// Attestations and PoSt proofs are small: any network will do.
    pub may_upload_small: bool,
    /// Seal proofs are large: unmetered networks only.
    pub may_upload_seal_proofs: bool,
    /// Why sealing (or, when it is refused too, proving) is not allowed; empty when all is.
    pub reason: String,
}

const GIB: u64 = 1 << 30;
const HOUR_MS: u64 = 3_600_000;

/// The free space that must remain after a sector: max(10% of the device, 2 GiB).
pub fn free_space_floor(total_bytes: u64) -> u64 {
    (total_bytes / 10).max(2 * GIB)
}

/// Decides from `facts`, the size of the next sector to seal (0 if none),
/// and how far away the next proof deadline is (`None`: nothing to prove).
pub fn decide(facts: &DeviceFacts, next_sector_bytes: u64, deadline_in_ms: Option<u64>) -> PowerDecision {
    let mut seal_refusals: Vec<String> = Vec::new();
    if !facts.charging {
        seal_refusals.push("not charging (a seal never starts on battery)".into());
    }
    if facts.battery_percent < 50 {
        seal_refusals.push(format!("battery {}% < 50%", facts.battery_percent));
    }
    if facts.thermal > Thermal::Fair {
        seal_refusals.push(format!("device is {:?}", facts.thermal).to_lowercase());
    }
    if facts.low_power_mode {
        seal_refusals.push("low-power mode is on".into());
    }
    let floor = free_space_floor(facts.total_bytes);
    if facts.free_bytes.saturating_sub(next_sector_bytes) < floor {
        seal_refusals.push(format!("free space would fall below {} MiB", floor >> 20));
    }
    let urgent = deadline_in_ms.is_some_and(|d| d < HOUR_MS);
    let min_battery = if urgent { 10 } else { 20 };
    let may_prove = deadline_in_ms.is_some()
        && (facts.charging || (facts.battery_percent >= min_battery && facts.thermal <= Thermal::Serious));
    let mut reason = seal_refusals.join("; ");
    if deadline_in_ms.is_some() && !may_prove {
        reason = format!(
            "no proving: battery {}% < {min_battery}% or device {:?}; no sealing: {reason}",
            facts.battery_percent, facts.thermal
        );
    }
    PowerDecision {
        may_seal: seal_refusals.is_empty(),
        may_prove,
        may_upload_small: facts.network != Network::None,
        may_upload_seal_proofs: facts.network == Network::Unmetered,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugged_in() -> DeviceFacts {
        DeviceFacts {
            battery_percent: 80,
            charging: true,
            thermal: Thermal::Nominal,
            low_power_mode: false,
            network: Network::Unmetered,
            free_bytes: 40 * GIB,
            total_bytes: 128 * GIB,
            screen_on: false,
        }
    }

    #[test]
    fn seals_only_when_every_condition_holds() {
        let ok = decide(&plugged_in(), GIB, Some(10 * HOUR_MS));
        assert!(ok.may_seal && ok.may_prove && ok.may_upload_seal_proofs, "{ok:?}");
        assert_eq!(ok.reason, "");
        type Case = (fn(&mut DeviceFacts), &'static str);
        let cases: [Case; 5] = [
            (|f| f.charging = false, "not charging"),
            (|f| f.battery_percent = 49, "battery 49%"),
            (|f| f.thermal = Thermal::Serious, "serious"),
            (|f| f.low_power_mode = true, "low-power"),
            (|f| f.free_bytes = 13 * GIB, "free space"),
        ];
        for (change, why) in cases {
            let mut f = plugged_in();
            change(&mut f);
            let d = decide(&f, GIB, None);
            assert!(!d.may_seal, "{why}");
            assert!(d.reason.contains(why), "{why}: {}", d.reason);
        }
        // 12.8 GiB floor on a 128 GiB device: 13.9 GiB free leaves room for 1 GiB.
        let mut f = plugged_in();
        f.free_bytes = 13 * GIB + 900 * (1 << 20);
        assert!(decide(&f, GIB, None).may_seal);
        assert_eq!(free_space_floor(8 * GIB), 2 * GIB);
    }

    #[test]
    fn proving_relaxes_near_the_deadline() {
        let mut f = plugged_in();
        f.charging = false;
        f.battery_percent = 15;
        assert!(!decide(&f, 0, Some(2 * HOUR_MS)).may_prove);
        assert!(decide(&f, 0, Some(HOUR_MS - 1)).may_prove);
        f.battery_percent = 9;
        assert!(!decide(&f, 0, Some(60_000)).may_prove);
        f.battery_percent = 20;
        f.thermal = Thermal::Critical;
        assert!(!decide(&f, 0, Some(2 * HOUR_MS)).may_prove);
        f.charging = true;
        assert!(decide(&f, 0, Some(2 * HOUR_MS)).may_prove);
        assert!(!decide(&f, 0, None).may_prove, "nothing to prove");
    }

    #[test]
    fn large_uploads_wait_for_unmetered_networks() {
        let mut f = plugged_in();
        f.network = Network::Metered;
        let d = decide(&f, 0, None);
        assert!(d.may_upload_small && !d.may_upload_seal_proofs);
        f.network = Network::None;
        assert!(!decide(&f, 0, None).may_upload_small);
    }

    /// SPEC §6: a seal never starts on battery, whatever else holds.
    #[test]
    fn no_combination_of_facts_seals_on_battery() {
        let thermals = [Thermal::Nominal, Thermal::Fair, Thermal::Serious, Thermal::Critical];
        let networks = [Network::None, Network::Metered, Network::Unmetered];
        let mut checked = 0;
        for battery in 0..=100u8 {
            for thermal in thermals {
                for low_power in [false, true] {
                    for network in networks {
                        for screen_on in [false, true] {
                            for free in [0, 3 * GIB, 64 * GIB, u64::MAX / 4] {
                                for deadline in [None, Some(0), Some(HOUR_MS - 1), Some(10 * HOUR_MS)] {
                                    let f = DeviceFacts {
                                        battery_percent: battery,
                                        charging: false,
                                        thermal,
                                        low_power_mode: low_power,
                                        network,
                                        free_bytes: free,
                                        total_bytes: 128 * GIB,
                                        screen_on,
                                    };
                                    let d = decide(&f, GIB, deadline);
                                    assert!(!d.may_seal, "sealing allowed on battery: {f:?}");
                                    assert!(d.reason.contains("not charging"), "{}", d.reason);
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 101 * 4 * 2 * 3 * 2 * 4 * 4);
    }
}
