//! The experiment behind the model card's "What we tried": a Poisson
//! regression (log link, Newton with a small ridge) per cell over multi-window
//! counts, against the KDE baseline and two ceilings, next week, PAI at 1%.
//!
//! ```text
//! cargo run --release -p citywatch-risk-hotspot --example window_fit -- datasets/toronto [--test]
//! ```
//! Without `--test`: fit on weekly forecasts 2015-2017, compare on 2018-19 (the
//! tuning years). With `--test`: fit on 2015-2019, score 2020-21 once.
//! Environment: `FOCUS=1` fits only the top 10% of cells by KDE; `HYBRID=1`
//! adds the model's surface as a feature; `L2=x` the ridge (default 1).
//! Ceilings: `static-oracle` flags the cells with the most incidents over the
//! scored span (the eval's `oracle_span`), `local-oracle` each week's cells by
//! their actual counts in the 8 weeks before and after it (the week left out).
//! Research code for a one-off comparison: it is not the model.
use citywatch_engine::hash::FastMap;
use citywatch_engine::lateness::parse_date_ms;
use citywatch_risk_hotspot::Config;
use citywatch_risk_hotspot::eval::{burglary_only, read_alarms};
use citywatch_risk_hotspot::surface::{Params, Surface};
use h3o::{CellIndex, Resolution};

const DAY: u64 = 86_400_000;
fn date_ms(s: &str) -> u64 {
    parse_date_ms(s).unwrap_or_else(|| panic!("'{s}' is not a date; use YYYY-MM-DD")) as u64
}

fn count(v: &[u64], lo: u64, hi: u64) -> u32 {
    (v.partition_point(|t| *t < hi) - v.partition_point(|t| *t < lo)) as u32
}

fn hits_at(score: &[f64], y: &[u32], n: usize) -> f64 {
    let mut s: Vec<f64> = score.to_vec();
    s.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
    let s_n = s[n - 1];
    let (mut g, mut m, mut sg, mut sm) = (0, 0, 0u64, 0u64);
    for (x, y) in score.iter().zip(y) {
        if *x > s_n {
            g += 1;
            sg += *y as u64;
        } else if *x == s_n {
            m += 1;
            sm += *y as u64;
        }
    }
    sg as f64 + (n - g) as f64 / m as f64 * sm as f64
}

// Solve (A) x = b, A symmetric positive definite (Cholesky).
fn solve(a: &mut [f64], b: &mut [f64], d: usize) {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        let l = s.max(1e-12).sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * d + k] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= a[k * d + i] * b[k];
        }
        b[i] = s / a[i * d + i];
    }
}

/// Poisson log-link fit by Newton with ridge `l2` (not on intercept, column 0).
fn fit(x: &[Vec<f64>], y: &[f64], wrow: &[f64], d: usize, l2: f64) -> Vec<f64> {
    let mut w = vec![0.0; d];
    let ym = y.iter().zip(wrow).map(|(a, b)| a * b).sum::<f64>() / wrow.iter().sum::<f64>();
    w[0] = ym.max(1e-6).ln();
    for _it in 0..25 {
        let mut h = vec![0.0; d * d];
        let mut g = vec![0.0; d];
        for ((xi, yi), wi) in x.iter().zip(y).zip(wrow) {
            let eta: f64 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
            let mu = eta.min(30.0).exp();
            for j in 0..d {
                g[j] += wi * (yi - mu) * xi[j];
                let mj = wi * mu * xi[j];
                for k in 0..=j {
                    h[j * d + k] += mj * xi[k];
                }
            }
        }
        for j in 0..d {
            for k in 0..j {
                h[k * d + j] = h[j * d + k];
            }
            if j > 0 {
                h[j * d + j] += l2;
                g[j] -= l2 * w[j];
            }
        }
        solve(&mut h, &mut g, d);
        let step: f64 = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        for j in 0..d {
            w[j] += g[j];
        }
        if step < 1e-7 {
            break;
        }
    }
    w
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(&args[0]);
    let test = args.iter().any(|a| a == "--test");
    let (alarms, _) = read_alarms(&dir).unwrap();
    let res = Resolution::Nine;
    let off = 5 * 3_600_000;
    // cell -> per category sorted times
    let mut cells: FastMap<u64, usize> = FastMap::default();
    let mut times: Vec<[Vec<u64>; 5]> = Vec::new();
    let mut area = Vec::new();
    for a in &alarms {
        let ci = a.category as usize;
        if ci >= 5 {
            continue;
        }
        let c = u64::from(a.pos.cell(res));
        let i = *cells.entry(c).or_insert_with(|| {
            area.push(c);
            times.push(Default::default());
            area.len() - 1
        });
        times[i][ci].push(a.ts_ms);
    }
    let n_a = area.len();
    let n1 = ((0.01 * n_a as f64).ceil()) as usize;
    let nbrs: Vec<Vec<usize>> = area
        .iter()
        .map(|c| {
            CellIndex::try_from(*c)
                .unwrap()
                .grid_disk::<Vec<_>>(1)
                .into_iter()
                .filter(|n| u64::from(*n) != *c)
                .filter_map(|n| cells.get(&u64::from(n)).copied())
                .collect()
        })
        .collect();
    let nbrs2: Vec<Vec<(usize, u32)>> = area
        .iter()
        .map(|c| {
            CellIndex::try_from(*c)
                .unwrap()
                .grid_disk_distances::<Vec<_>>(2)
                .into_iter()
                .filter_map(|(n, k)| cells.get(&u64::from(n)).map(|i| (*i, k)))
                .collect()
        })
        .collect();
    let spacing = res.edge_length_m() * 3f64.sqrt();
    let start = date_ms("2014-01-01") + off;
    let windows: [u64; 5] = [7, 28, 90, 365, 10_000];
    // groups: 0 all, 1 burglary, 2 theft, 3 robbery, 4 assault, 5 vehicle theft
    let group_cats: [&[usize]; 6] = [&[0, 1, 2, 3, 4], &[0], &[1], &[2], &[3], &[4]];
    // Features per area cell at forecast time T, with the KDE baseline's score
    // and the targets (next week, the local-oracle count).
    let hybrid = std::env::var("HYBRID").is_ok();
    let feats = |t: u64, target: usize, sf: &mut (Surface, usize)| -> (Vec<Vec<f64>>, Vec<f64>, Vec<[u32; 2]>) {
        while sf.1 < alarms.len() && alarms[sf.1].ts_ms < t {
            sf.0.add(alarms[sf.1].ts_ms, alarms[sf.1].pos, alarms[sf.1].category);
            sf.1 += 1;
        }
        let fac = sf.0.factors(t);
        // own counts [group][window]
        let ng = 6;
        let nw = windows.len() + 1; // + season
        let mut own = vec![vec![0f64; ng * nw]; n_a];
        for i in 0..n_a {
            for (g, cats) in group_cats.iter().enumerate() {
                for (wi, w) in windows.iter().enumerate() {
                    let lo = t.saturating_sub(w * DAY).max(start);
                    own[i][g * nw + wi] = cats.iter().map(|c| count(&times[i][*c], lo, t)).sum::<u32>() as f64;
                }
                let lo = t.saturating_sub(372 * DAY);
                own[i][g * nw + windows.len()] =
                    cats.iter().map(|c| count(&times[i][*c], lo, lo + 35 * DAY)).sum::<u32>() as f64;
            }
        }
        let years = ((t - start) as f64 / (365.0 * DAY as f64)).max(0.1);
        let mut x = Vec::with_capacity(n_a);
        let mut kde = Vec::with_capacity(n_a);
        let mut y = Vec::with_capacity(n_a);
        let bw = 150.0f64;
        for i in 0..n_a {
            let mut f = vec![1.0];
            let sel: &[usize] = if target == 0 { &[0, 1, 2, 3, 4, 5] } else { &[1, 0] };
            for (gi, g) in sel.iter().enumerate() {
                let main = gi < 2;
                for wi in 0..nw {
                    if !main && wi != 3 && wi != 4 {
                        continue;
                    }
                    let mut v = own[i][g * nw + wi];
                    let mut r: f64 = nbrs[i].iter().map(|j| own[*j][g * nw + wi]).sum();
                    if wi == 4 {
                        v /= years;
                        r /= years;
                    }
                    f.push((1.0 + v).ln());
                    if main {
                        f.push((1.0 + r).ln());
                    }
                }
            }
            if hybrid {
                f.push((1e-3 + Surface::risk_of(&sf.0.parts(area[i]), &fac)).ln());
            }
            x.push(f);
            let k: f64 = nbrs2[i]
                .iter()
                .map(|(j, kk)| {
                    let d = *kk as f64 * spacing;
                    (-d * d / (2.0 * bw * bw)).exp() * own[*j][target * nw + 3]
                })
                .sum();
            kde.push(k);
            let tc: &[usize] = group_cats[target];
            let yy = tc.iter().map(|c| count(&times[i][*c], t, t + 7 * DAY)).sum::<u32>();
            // The local-oracle count: 8 weeks before and after, the week itself left out.
            let local = tc
                .iter()
                .map(|c| {
                    count(&times[i][*c], t.saturating_sub(56 * DAY), t)
                        + count(&times[i][*c], t + 7 * DAY, t + 63 * DAY)
                })
                .sum::<u32>();
            y.push([yy, local]);
        }
        (x, kde, y)
    };
    let weeks = |from: &str, to: &str| {
        let (a, b) = (date_ms(from) + off, date_ms(to) + off);
        (0..).map(move |k| a + k * 7 * DAY).take_while(move |t| t + 7 * DAY <= b)
    };
    let (tr, va) = if test {
        (("2015-01-01", "2020-01-01"), ("2020-01-01", "2022-01-01"))
    } else {
        (("2015-01-01", "2018-01-01"), ("2018-01-01", "2020-01-01"))
    };
    for target in [0usize, 1] {
        let cfg = if target == 0 { Config::default() } else { burglary_only(&Config::default()) };
        let mut sf = (Surface::new(Params::new(&cfg)), 0usize);
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut wr = Vec::new();
        for t in weeks(tr.0, tr.1) {
            let (f, kde, yy) = feats(t, target, &mut sf);
            // focus: top 10% by kde
            let mut s = kde.clone();
            let k = n_a / 10;
            s.select_nth_unstable_by(k, |a, b| b.total_cmp(a));
            let cut = s[k];
            for i in 0..n_a {
                let focus = std::env::var("FOCUS").is_ok();
                if focus && kde[i] < cut {
                    continue;
                }
                x.push(f[i].clone());
                y.push(yy[i][0] as f64);
                wr.push(1.0);
            }
        }
        let d = x[0].len();
        let l2: f64 = std::env::var("L2").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
        let w = fit(&x, &y, &wr, d, l2);
        eprintln!(
            "target {target}: {} rows, d {d}, w {:?}",
            x.len(),
            w.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>()
        );
        let (mut hm, mut hk, mut ho, mut tot) = (0.0, 0.0, 0.0, 0u64);
        let mut oracle_sum = vec![0u64; n_a];
        let mut all_y = Vec::new();
        let mut all_m = Vec::new();
        let mut all_k = Vec::new();
        let mut hl = 0.0;
        for t in weeks(va.0, va.1) {
            let (f, kde, yy) = feats(t, target, &mut sf);
            let m: Vec<f64> = f.iter().map(|fi| fi.iter().zip(&w).map(|(a, b)| a * b).sum()).collect();
            let yw: Vec<u32> = yy.iter().map(|v| v[0]).collect();
            hm += hits_at(&m, &yw, n1);
            hk += hits_at(&kde, &yw, n1);
            let loc: Vec<f64> = yy.iter().map(|v| v[1] as f64).collect();
            hl += hits_at(&loc, &yw, n1);
            tot += yw.iter().map(|v| *v as u64).sum::<u64>();
            for i in 0..n_a {
                oracle_sum[i] += yw[i] as u64;
            }
            all_y.push(yw);
            all_m.push(m);
            all_k.push(kde);
        }
        let os: Vec<f64> = oracle_sum.iter().map(|v| *v as f64).collect();
        for yw in &all_y {
            ho += hits_at(&os, yw, n1);
        }
        let pai = |h: f64| h / tot as f64 / (n1 as f64 / n_a as f64);
        println!(
            "target {target} week PAI@1%: model {:.2} kde {:.2} ratio {:.3}  static-oracle {:.2} ({:.3}) local-oracle {:.3}",
            pai(hm),
            pai(hk),
            hm / hk,
            pai(ho),
            ho / hk,
            hl / hk
        );
    }
}
