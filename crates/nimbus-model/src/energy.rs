//! Energy and carbon of servers: a power model, embodied carbon amortised
//! over a lifetime, and Shapley-value attribution of shared costs.

/// Power that grows linearly with utilisation between idle and full load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearPower {
    /// Watts at zero utilisation.
    pub idle_w: f64,
    /// Watts at full utilisation.
    pub max_w: f64,
}

impl LinearPower {
    /// A two-socket server: 90 W idle, 300 W at full load (inferred; at a
    /// 25% average load it draws 142 W, the 1,243 kWh a year Boavizta lists
    /// for a Dell PowerEdge C6420).
    pub const SERVER: LinearPower = LinearPower { idle_w: 90.0, max_w: 300.0 };

    /// Watts at utilisation `u` (clamped to [0, 1]).
    pub fn watts(&self, u: f64) -> f64 {
        self.idle_w + (self.max_w - self.idle_w) * u.clamp(0.0, 1.0)
    }
}

/// Embodied (manufacturing) carbon of a device, amortised over its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embodied {
    /// Life-cycle footprint, kg CO2e.
    pub gwp_total_kg: f64,
    /// Share of it from manufacturing.
    pub manufacturing_ratio: f64,
    /// Years of service.
    pub lifetime_years: f64,
}

impl Embodied {
    /// Dell PowerEdge C6420 (Boavizta environmental-footprint data:
    /// 6,510 kg CO2e, 18.5% manufacturing, 4 years).
    pub const SERVER: Embodied = Embodied { gwp_total_kg: 6510.0, manufacturing_ratio: 0.185, lifetime_years: 4.0 };

    /// Grams CO2e per second of service.
    pub fn g_per_s(&self) -> f64 {
        self.gwp_total_kg * 1000.0 * self.manufacturing_ratio / (self.lifetime_years * 365.25 * 86_400.0)
    }
}

/// Shapley values of the `n`-player game `value(members)`, where `members`
/// is a bitmask of players. Exact (all 2^n coalitions) for n ≤ 12; above,
/// the mean marginal contribution over `samples` random orders drawn from
/// `seed` (deterministic).
pub fn shapley(n: usize, value: impl Fn(u64) -> f64, samples: usize, seed: u64) -> Vec<f64> {
    assert!(n <= 63, "at most 63 players");
    let mut phi = vec![0.0; n];
    if n == 0 {
        return phi;
    }
    if n <= 12 {
        // φ_i = Σ_{S ∌ i} |S|!(n−|S|−1)!/n! · (v(S ∪ {i}) − v(S)).
        let mut fact = vec![1.0f64; n + 1];
        for k in 1..=n {
            fact[k] = fact[k - 1] * k as f64;
        }
        let values: Vec<f64> = (0..1u64 << n).map(&value).collect();
        for (i, p) in phi.iter_mut().enumerate() {
            let bit = 1u64 << i;
            for s in 0..1u64 << n {
                if s & bit != 0 {
                    continue;
                }
                let size = s.count_ones() as usize;
                let weight = fact[size] * fact[n - size - 1] / fact[n];
                *p += weight * (values[(s | bit) as usize] - values[s as usize]);
            }
        }
        return phi;
    }
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..samples.max(1) {
        for i in (1..n).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut members = 0u64;
        let mut before = value(0);
        for &i in &order {
            members |= 1 << i;
            let after = value(members);
            phi[i] += after - before;
            before = after;
        }
    }
    let k = samples.max(1) as f64;
    phi.iter_mut().for_each(|p| *p /= k);
    phi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapley_of_a_glove_game_by_hand() {
        // Player 0 holds a left glove, players 1 and 2 right gloves; a pair
        // is worth 1. Known values: 2/3, 1/6, 1/6.
        let v = |s: u64| if s & 1 != 0 && s & 0b110 != 0 { 1.0 } else { 0.0 };
        let phi = shapley(3, v, 0, 0);
        assert!((phi[0] - 2.0 / 3.0).abs() < 1e-12 && (phi[1] - 1.0 / 6.0).abs() < 1e-12);
        assert!((phi[1] - phi[2]).abs() < 1e-12, "symmetric players get equal shares");
        assert!((phi.iter().sum::<f64>() - 1.0).abs() < 1e-12, "efficient");
    }

    #[test]
    fn shared_idle_power_splits_equally_and_dynamic_power_by_use() {
        // Idle 100 W shared by whoever is present; 10 W per running task.
        let tasks = [0.0, 2.0, 5.0];
        let v = |s: u64| {
            if s == 0 {
                return 0.0;
            }
            100.0 + (0..3).filter(|i| s >> i & 1 == 1).map(|i| 10.0 * tasks[i]).sum::<f64>()
        };
        let phi = shapley(3, v, 0, 0);
        for (i, t) in tasks.iter().enumerate() {
            assert!((phi[i] - (100.0 / 3.0 + 10.0 * t)).abs() < 1e-9, "{phi:?}");
        }
        // Sampled orders agree with the exact values for this additive game.
        let sampled = shapley(3, v, 2_000, 7);
        assert!(sampled.iter().zip(&phi).all(|(a, b)| (a - b).abs() < 2.0), "{sampled:?}");
        assert!((sampled.iter().sum::<f64>() - v(0b111)).abs() < 1e-9, "every order is efficient");
    }

    #[test]
    fn power_and_embodied_by_hand() {
        assert_eq!(LinearPower::SERVER.watts(0.25), 142.5);
        assert_eq!(LinearPower::SERVER.watts(2.0), 300.0);
        // 6,510 kg × 18.5% over 4 years: 9.541 mg per second.
        assert!((Embodied::SERVER.g_per_s() - 0.009_541).abs() < 1e-6);
    }
}
