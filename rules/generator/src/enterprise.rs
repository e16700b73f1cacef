//! One enterprise's timeline: identity, routine filings, risk-driven event chains, and the
//! delivery perturbations (corrections, duplicates, late arrivals, malformed copies).
//!
//! Everything is drawn from the enterprise's own random stream, so enterprises can be
//! generated in any order, and again for every output window, with identical results.

use chrono::NaiveDate;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{GenConfig, RiskLevel, RiskLevelConfig};
use super::ids;
use super::record::{Delivery, Malform, Rec, DOMAINS, HONOURS, INDUSTRIES, MATTERS, P};
use rules::event::*;
use rules::time::{add_months, add_years, local_date, local_year, ymd, Period, Ts, DAY};

const HOUR: Ts = 3600;
const CNY: i64 = 100;

/// Routine behaviour of a latent risk level (not configurable: the configurable part is the
/// mix and the adverse-event multipliers in [`RiskLevelConfig`]).
struct Traits {
    /// Tax grade weights, [`TaxGrade::ALL`] order (A, B, M, C, D).
    grade: [f64; 5],
    /// Provincial public credit score: mean and half-width.
    pcs: (i64, i64),
    /// Legal representative's personal score (of 1000): mean and half-width.
    per_score: (i64, i64),
    /// Monthly probability of a zero tax declaration.
    zero_declaration: f64,
    /// Yearly relative change of staff.
    staff_trend: f64,
    /// Paid-in share of registered capital: low and high end.
    paid_in: (f64, f64),
    /// Probabilities of an annual report being late, missing, or mismatching the tax data.
    report: [f64; 3],
    /// Inspection result weights, [`InspResult::ALL`] order.
    inspection: [f64; 4],
    /// Commitment verification weights, [`CmtResult::ALL`] order (NORMAL, RECTIFY, BROKEN).
    commitment: [f64; 3],
    /// Probabilities of paying a fine or an enforced sum on time and late (else never).
    payment: [f64; 2],
    /// Yearly probabilities of an honour and of a voluntary commitment.
    honour: f64,
    /// Yearly probability of a voluntary commitment.
    voluntary: f64,
    /// Yearly probability of a change of legal representative.
    rep_change: f64,
    /// Probability of sharing the registered address with other firms, and of firms being young.
    address_cluster: f64,
    /// Probability that the firm is young (established less than two years before the start).
    young: f64,
}

/// [`Traits`] per [`RiskLevel`], [`RiskLevel::ALL`] order.
const TRAITS: [Traits; 4] = [
    Traits {
        grade: [1.0, 0.0, 0.0, 0.0, 0.0],
        pcs: (925, 40),
        per_score: (860, 60),
        zero_declaration: 0.0,
        staff_trend: 0.05,
        paid_in: (0.9, 1.0),
        report: [0.0, 0.0, 0.0],
        inspection: [1.0, 0.0, 0.0, 0.0],
        commitment: [1.0, 0.0, 0.0],
        payment: [1.0, 0.0],
        honour: 0.5,
        voluntary: 0.5,
        rep_change: 0.01,
        address_cluster: 0.0,
        young: 0.0,
    },
    Traits {
        grade: [0.35, 0.5, 0.1, 0.04, 0.01],
        pcs: (735, 60),
        per_score: (760, 80),
        zero_declaration: 0.02,
        staff_trend: 0.02,
        paid_in: (0.3, 1.0),
        report: [0.05, 0.02, 0.02],
        inspection: [0.85, 0.1, 0.04, 0.01],
        commitment: [0.93, 0.06, 0.01],
        payment: [0.85, 0.12],
        honour: 0.05,
        voluntary: 0.08,
        rep_change: 0.04,
        address_cluster: 0.05,
        young: 0.12,
    },
    Traits {
        grade: [0.05, 0.35, 0.25, 0.25, 0.1],
        pcs: (690, 60),
        per_score: (650, 90),
        zero_declaration: 0.15,
        staff_trend: -0.05,
        paid_in: (0.1, 0.8),
        report: [0.2, 0.1, 0.08],
        inspection: [0.6, 0.2, 0.15, 0.05],
        commitment: [0.8, 0.12, 0.08],
        payment: [0.6, 0.3],
        honour: 0.0,
        voluntary: 0.02,
        rep_change: 0.1,
        address_cluster: 0.15,
        young: 0.2,
    },
    Traits {
        grade: [0.0, 0.1, 0.2, 0.4, 0.3],
        pcs: (570, 70),
        per_score: (520, 100),
        zero_declaration: 0.4,
        staff_trend: -0.2,
        paid_in: (0.0, 0.5),
        report: [0.3, 0.25, 0.15],
        inspection: [0.35, 0.2, 0.3, 0.15],
        commitment: [0.6, 0.2, 0.2],
        payment: [0.3, 0.3],
        honour: 0.0,
        voluntary: 0.0,
        rep_change: 0.25,
        address_cluster: 0.3,
        young: 0.25,
    },
];

/// Which of a level's multipliers scales an adverse event.
#[derive(Debug, Clone, Copy)]
enum Severity {
    Minor,
    Yellow,
    Red,
}

/// Adverse event chains.
#[derive(Debug, Clone, Copy)]
enum Risk {
    Penalty(DishonestyClass),
    Listing(ListType),
    TaxArrears,
    AbnormalHousehold,
    MajorTaxViolation,
    Lawsuit,
    Freeze,
    Enforcement(Sanction),
    Overdue { beyond_90_days: bool },
    FinList(FinKind),
    SuspiciousAccount,
    RepDishonest,
}

/// How far an enforcement case escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sanction {
    /// Terminated (终本) with an unpaid remainder.
    Terminated,
    /// Consumption restricted (限高).
    Restricted,
    /// Dishonest debtor (失信被执行人), also restricted.
    Dishonest,
}

/// Adverse events: chain, severity, base yearly rate per enterprise at multiplier 1.
const RISKS: [(Risk, Severity, f64); 19] = [
    (Risk::Penalty(DishonestyClass::Minor), Severity::Minor, 0.06),
    (
        Risk::Penalty(DishonestyClass::General),
        Severity::Minor,
        0.05,
    ),
    (Risk::Lawsuit, Severity::Minor, 0.12),
    (Risk::Freeze, Severity::Minor, 0.02),
    (
        Risk::Overdue {
            beyond_90_days: false,
        },
        Severity::Minor,
        0.04,
    ),
    (Risk::TaxArrears, Severity::Minor, 0.04),
    (Risk::SuspiciousAccount, Severity::Minor, 0.01),
    (
        Risk::Penalty(DishonestyClass::Serious),
        Severity::Yellow,
        0.006,
    ),
    (Risk::Listing(ListType::Abnormal), Severity::Yellow, 0.02),
    (
        Risk::Overdue {
            beyond_90_days: true,
        },
        Severity::Yellow,
        0.006,
    ),
    (Risk::AbnormalHousehold, Severity::Yellow, 0.006),
    (
        Risk::Enforcement(Sanction::Terminated),
        Severity::Yellow,
        0.006,
    ),
    (
        Risk::Enforcement(Sanction::Restricted),
        Severity::Yellow,
        0.005,
    ),
    (Risk::RepDishonest, Severity::Yellow, 0.004),
    (
        Risk::Listing(ListType::SeriousIllegal),
        Severity::Red,
        0.002,
    ),
    (Risk::Enforcement(Sanction::Dishonest), Severity::Red, 0.004),
    (Risk::MajorTaxViolation, Severity::Red, 0.0015),
    (
        Risk::FinList(FinKind::DebtEvasionListed),
        Severity::Red,
        0.0015,
    ),
    (Risk::FinList(FinKind::PoliceListed), Severity::Red, 0.001),
];

/// The fixed parts of one court case's records.
#[derive(Debug, Clone, Copy)]
struct Case {
    court: u8,
    role: JudRole,
    cause: JudCause,
    /// Used by `CASE_CLOSED`.
    close: CloseReason,
}

impl Case {
    fn rec(self, kind: JudKind, amount: i64, date: Option<NaiveDate>) -> P {
        let Case {
            court,
            role,
            cause,
            close,
        } = self;
        P::Jud {
            kind,
            court,
            role,
            cause,
            amount,
            close,
            date,
        }
    }
}

/// A kept record: its `seq` and `ingest_time` (follow-ups are ingested after it).
#[derive(Debug, Clone, Copy)]
struct Link {
    seq: u32,
    ingest: Ts,
}

/// Generates one enterprise's records, perturbations included, appending them to `out`.
pub(super) fn generate(cfg: &GenConfig, ent: u32, out: &mut Vec<Rec>) {
    let mut rng = ids::rng(cfg.seed, ent);
    let level = pick_level(cfg, &mut rng);
    let first = out.len();
    let mut t = Timeline {
        cfg,
        rates: cfg.risk.get(level),
        traits: &TRAITS[level.index()],
        rng,
        ent,
        seq: 0,
        start: cfg.start,
        end: add_years(cfg.start, cfg.years),
        established: 0,
        reps: Vec::new(),
        staff: 0,
        sales: 0,
        out,
    };
    if t.identity() {
        t.routine();
        t.risks();
    }
    t.perturb(first);
}

fn pick_level(cfg: &GenConfig, rng: &mut ChaCha8Rng) -> RiskLevel {
    let weights = cfg.risk.by_level().map(|(_, c)| c.share);
    RiskLevel::ALL[pick(rng, &weights)]
}

/// Index drawn with the given weights.
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// Poisson-distributed count with mean `lambda` (Knuth; `lambda` is small here).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let mut n = 0;
    let mut p = rng.random::<f64>();
    while p > limit && n < 1000 {
        n += 1;
        p *= rng.random::<f64>();
    }
    n
}

struct Timeline<'a> {
    cfg: &'a GenConfig,
    rates: &'a RiskLevelConfig,
    traits: &'static Traits,
    rng: ChaCha8Rng,
    ent: u32,
    seq: u32,
    start: Ts,
    /// Nothing is ingested at or after this.
    end: Ts,
    established: Ts,
    /// Legal representatives: from when, person number.
    reps: Vec<(Ts, u32)>,
    /// Insured staff at the start.
    staff: i64,
    /// Monthly sales at the start, fen.
    sales: i64,
    out: &'a mut Vec<Rec>,
}

impl Timeline<'_> {
    fn uniform(&mut self, from: Ts, to: Ts) -> Ts {
        if to <= from {
            from
        } else {
            self.rng.random_range(from..to)
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// An amount in fen, log-uniform between two amounts in CNY.
    fn cny(&mut self, low: i64, high: i64) -> i64 {
        let (l, h) = ((low as f64).ln(), (high as f64).ln());
        (self.rng.random_range(l..h).exp() as i64).max(1) * CNY
    }

    /// Reporting lag: mostly minutes to hours, sometimes days, rarely weeks.
    fn lag(&mut self) -> Ts {
        match self.rng.random_range(0..100) {
            0..70 => self.rng.random_range(60..8 * HOUR),
            70..95 => self.rng.random_range(DAY..3 * DAY),
            _ => self.rng.random_range(3 * DAY..30 * DAY),
        }
    }

    /// Keeps a record ingested after `after` (a lag after its event time) unless that falls
    /// past the end of the simulated period.
    fn push(
        &mut self,
        event_time: Ts,
        after: Ts,
        head: Option<u32>,
        reference: Option<u32>,
        body: P,
    ) -> Option<Link> {
        let ingest = (event_time + self.lag()).max(after + self.rng.random_range(1..HOUR));
        if ingest >= self.end || event_time < self.established {
            return None;
        }
        let seq = self.seq;
        self.seq += 1;
        self.out.push(Rec {
            ingest,
            event_time,
            delay: 0,
            ent: self.ent,
            seq,
            key: head.unwrap_or(seq),
            reference,
            version: 1,
            delivery: Delivery::Original,
            body,
        });
        Some(Link { seq, ingest })
    }

    /// A chain head: something new within the simulated period, starting a business key.
    fn head(&mut self, event_time: Ts, body: P) -> Option<Link> {
        if event_time < self.start {
            return None;
        }
        self.push(event_time, Ts::MIN, None, None, body)
    }

    /// A follow-up of `head` (same business key) `delay` after `prev`'s event time.
    fn follow(
        &mut self,
        head: Link,
        event_time: Ts,
        reference: Option<Link>,
        body: P,
    ) -> Option<Link> {
        self.push(
            event_time,
            head.ingest,
            Some(head.seq),
            reference.map(|l| l.seq),
            body,
        )
    }

    /// Facts true at the start are loaded in its first three days; later ones are reported
    /// with the usual lag.
    fn known(&mut self, event_time: Ts, body: P) -> Option<Link> {
        let after = if event_time < self.start {
            self.start + self.uniform(0, 3 * DAY)
        } else {
            Ts::MIN
        };
        self.push(event_time, after, None, None, body)
    }

    fn person(&self, t: Ts) -> u32 {
        self.reps
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .or(self.reps.first())
            .map_or(self.ent, |r| r.1)
    }

    /// Establishment, capital, legal representative, shared address, ownership links; false
    /// when the enterprise is not established within the simulated period.
    fn identity(&mut self) -> bool {
        let n = self.cfg.enterprises;
        self.established = if self.chance(self.traits.young) {
            self.uniform(self.start - 2 * 365 * DAY, self.end - 180 * DAY)
        } else {
            self.uniform(self.start - 20 * 365 * DAY, self.start - 3 * 365 * DAY)
        };
        let since = self.established;
        let industry = self.rng.random_range(0..INDUSTRIES.len()) as u8;
        if self.known(since, P::Established { industry }).is_none() {
            return false;
        }
        let registered = self.cny(100_000, 50_000_000);
        let (lo, hi) = self.traits.paid_in;
        let paid_in = (registered as f64 * self.rng.random_range(lo..=hi)) as i64;
        self.known(
            since,
            P::Capital {
                registered,
                paid_in,
            },
        );
        self.staff = (registered / CNY / 200_000).clamp(1, 500) + self.rng.random_range(0..10);
        self.sales = self.cny(50_000, 5_000_000);

        let first_rep = if n > 1 && self.chance(0.08) {
            self.rng.random_range(0..n)
        } else {
            self.ent
        };
        self.reps.push((since, first_rep));
        let role = self.known(
            since,
            P::Per {
                kind: PerKind::Role,
                person: first_rep,
                role: Some(PersonRole::LegalRep),
            },
        );
        if let Some(role) =
            role.filter(|_| self.chance(self.traits.rep_change * f64::from(self.cfg.years)))
        {
            let t = self.uniform(self.start.max(since), self.end);
            let next = n + self.ent;
            self.reps.push((t, next));
            self.push(t, Ts::MIN, None, None, P::Changed(ChangeField::LegalRep));
            self.push(
                t,
                role.ingest,
                None,
                Some(role.seq),
                P::Per {
                    kind: PerKind::RoleEnded,
                    person: first_rep,
                    role: None,
                },
            );
            self.push(
                t,
                Ts::MIN,
                None,
                None,
                P::Per {
                    kind: PerKind::Role,
                    person: next,
                    role: Some(PersonRole::LegalRep),
                },
            );
        }
        if self.chance(self.cfg.status_change_rate) {
            let t = self.uniform(since, self.end);
            let status = if self.chance(0.5) {
                RegStatus::Revoked
            } else {
                RegStatus::Deregistered
            };
            self.known(t, P::Status(status));
            if status == RegStatus::Revoked && self.chance(1.0 / 3.0) {
                let back = self.uniform(t, self.end);
                self.known(back, P::Status(RegStatus::Active));
            }
        }
        if self.chance(self.traits.address_cluster) {
            let count = self.rng.random_range(2..16);
            let t = self.uniform(since, self.end);
            self.known(t, P::AddressCluster(count));
        }
        if n > 1 {
            for (kind, p, bp) in [
                (RegKind::Shareholder, 0.25, 200..6000),
                (RegKind::Investment, 0.2, 100..10_001),
            ] {
                for _ in 0..poisson(&mut self.rng, p) {
                    let other = (self.ent + self.rng.random_range(1..n)) % n;
                    let share_bp = self.rng.random_range(bp.clone());
                    let t = self.uniform(since, self.end);
                    self.known(
                        t,
                        P::Share {
                            kind,
                            counterparty: Some(other),
                            share_bp,
                        },
                    );
                }
            }
        }
        true
    }

    /// Monthly tax filings, yearly grades and reports, periodic scores, inspections,
    /// commitments, honours, pledges and mortgages.
    fn routine(&mut self) {
        let first = Period::of(self.start.max(self.established)).0 - 1;
        let last = Period::of(self.end).0;
        let mut year_tax = (0, 0i64, 0i64);
        let monthly_trend = (1.0 + self.traits.staff_trend).powf(1.0 / 12.0);
        for p in first..last {
            let period = Period(p);
            let filed = Period(p + 1).start() + self.uniform(DAY, 15 * DAY);
            let months = f64::from(p - first);
            let staff = ((self.staff as f64) * monthly_trend.powf(months)).round() as i64;
            let zero = self.chance(self.traits.zero_declaration);
            let season = self.rng.random_range(0.7..1.3);
            let sales = if zero {
                0
            } else {
                (self.sales as f64 * season * monthly_trend.powf(months)) as i64
            };
            let paid = sales * self.rng.random_range(2..6) / 100;
            self.known(
                filed,
                P::TaxMonthly {
                    kind: TaxKind::Declared,
                    period,
                    value: sales,
                },
            );
            if paid > 0 {
                self.known(
                    filed,
                    P::TaxMonthly {
                        kind: TaxKind::Paid,
                        period,
                        value: paid,
                    },
                );
            }
            self.known(
                filed,
                P::TaxMonthly {
                    kind: TaxKind::SocialInsurance,
                    period,
                    value: staff.max(0),
                },
            );
            if year_tax.0 != period.year() {
                year_tax = (period.year(), 0, 0);
            }
            year_tax.1 += paid;
            year_tax.2 += sales;
            if period.month() == 12 {
                self.annual_report(period.year(), year_tax.1, staff.max(0), year_tax.2);
            }
        }
        for year in local_year(self.start) - 1..local_year(self.end) {
            self.grade(year);
        }
        for year in local_year(self.start)..=local_year(self.end - 1) {
            for quarter in 0..4 {
                self.quarter(year, quarter);
            }
            self.yearly(year);
        }
    }

    fn annual_report(&mut self, year: i32, tax: i64, staff: i64, revenue: i64) {
        let [late, missing, mismatch] = self.traits.report;
        if ymd(year + 1, 1, 1) <= self.established || self.chance(missing) {
            return;
        }
        let due = ymd(year + 1, 7, 1);
        let t = if self.chance(late) {
            self.uniform(due, ymd(year + 1, 12, 31))
        } else {
            self.uniform(ymd(year + 1, 1, 1), due - DAY)
        };
        let (tax, staff) = if self.chance(mismatch) {
            (0, 0)
        } else {
            (tax, staff)
        };
        self.known(
            t,
            P::AnnualReport {
                year,
                tax,
                staff,
                revenue,
            },
        );
    }

    fn grade(&mut self, year: i32) {
        if ymd(year + 1, 1, 1) <= self.established {
            return;
        }
        let grade = if ymd(year, 1, 1) <= self.established {
            TaxGrade::M
        } else {
            TaxGrade::ALL[pick(&mut self.rng, &self.traits.grade)]
        };
        let t = self.uniform(ymd(year + 1, 4, 1), ymd(year + 1, 4, 30));
        self.known(t, P::TaxGrade { year, grade });
    }

    /// Public credit score each quarter, the legal representative's score every two months,
    /// inspections by campaign.
    fn quarter(&mut self, year: i32, quarter: u32) {
        let q_start = ymd(year, quarter * 3 + 1, 1);
        let (mean, half) = self.traits.pcs;
        let score = (mean + self.rng.random_range(-half..=half)).clamp(0, 1000);
        let t = q_start + self.uniform(2 * DAY, 6 * DAY);
        self.head(t, P::PcsScore(score));
        for month in [0, 2] {
            let t = add_months(q_start, month) + self.uniform(DAY, 10 * DAY);
            let (mean, half) = self.traits.per_score;
            let score = (mean + self.rng.random_range(-half..=half)).clamp(0, 1000);
            let person = self.person(t);
            self.head(t, P::PerScore { person, score });
        }
        if self.chance(0.08) {
            let t = q_start + self.uniform(15 * DAY, 80 * DAY);
            let result = InspResult::ALL[pick(&mut self.rng, &self.traits.inspection)];
            let campaign = year * 4 + quarter as i32;
            self.head(t, P::Insp { campaign, result });
        }
    }

    fn yearly(&mut self, year: i32) {
        let (from, to) = (ymd(year, 1, 1), ymd(year + 1, 1, 1));
        for _ in 0..poisson(&mut self.rng, 0.3) {
            let t = self.uniform(from, to);
            self.commitment(t, CommitmentType::Approval);
        }
        if self.chance(self.traits.voluntary) {
            let t = self.uniform(from, to);
            self.commitment(t, CommitmentType::Voluntary);
        }
        if self.chance(self.traits.honour) {
            let t = self.uniform(from, to);
            let honour = self.rng.random_range(0..HONOURS.len()) as u8;
            let valid_until = local_date(add_years(t, self.rng.random_range(1..3)));
            let body = P::Honour {
                kind: PcsKind::Honour,
                honour,
                valid_until,
            };
            if let Some(h) = self.head(t, body).filter(|_| self.chance(0.03)) {
                let r = h.ingest + self.uniform(10 * DAY, 200 * DAY);
                self.follow(
                    h,
                    r,
                    Some(h),
                    P::Honour {
                        kind: PcsKind::HonourRevoked,
                        honour,
                        valid_until,
                    },
                );
            }
        }
        if self.chance(0.05) {
            let field = [
                ChangeField::Address,
                ChangeField::Shareholder,
                ChangeField::CapitalDecrease,
                ChangeField::Other,
                ChangeField::Other,
            ][self.rng.random_range(0..5)];
            let t = self.uniform(from, to);
            self.head(t, P::Changed(field));
        }
        for (kind, release, p) in [
            (RegKind::EquityPledge, RegKind::PledgeReleased, 0.04),
            (RegKind::Mortgage, RegKind::MortgageCancelled, 0.06),
        ] {
            if !self.chance(p) {
                continue;
            }
            let t = self.uniform(from, to);
            let body = match kind {
                RegKind::EquityPledge => P::Share {
                    kind,
                    counterparty: None,
                    share_bp: self.rng.random_range(500..=10_000),
                },
                _ => P::Reg(kind),
            };
            if let Some(h) = self.head(t, body).filter(|_| self.chance(0.6)) {
                let r = t + self.uniform(180 * DAY, 720 * DAY);
                self.follow(h, r, Some(h), P::Reg(release));
            }
        }
    }

    /// PUBLISHED, then VERIFIED, and RECTIFIED after a RECTIFY result (usually).
    fn commitment(&mut self, t: Ts, ctype: CommitmentType) {
        let matter = self.rng.random_range(0..MATTERS.len()) as u8;
        let valid_until = local_date(add_years(t, 1));
        let weights = if ctype == CommitmentType::Voluntary {
            [1.0, 0.0, 0.0]
        } else {
            self.traits.commitment
        };
        let result = CmtResult::ALL[pick(&mut self.rng, &weights)];
        let cmt = |kind, result, deadline| P::Cmt {
            kind,
            ctype,
            matter,
            valid_until,
            result,
            deadline,
        };
        let Some(h) = self.head(t, cmt(CmtKind::Published, result, None)) else {
            return;
        };
        let verified = self.uniform(add_months(t, 1), add_months(t, 11));
        let deadline = (result == CmtResult::Rectify).then(|| local_date(add_months(verified, 2)));
        if self
            .follow(h, verified, None, cmt(CmtKind::Verified, result, deadline))
            .is_some()
            && result == CmtResult::Rectify
            && self.chance(0.8)
        {
            let done = self.uniform(verified + DAY, add_months(verified, 2));
            self.follow(h, done, None, cmt(CmtKind::Rectified, result, None));
        }
    }

    /// Adverse event chains, year by year, at the level's rates.
    fn risks(&mut self) {
        let mut from = self.start.max(self.established);
        while from < self.end {
            let to = add_years(from, 1).min(self.end);
            let share = (to - from) as f64 / (365.0 * DAY as f64);
            for (risk, severity, rate) in RISKS {
                let multiplier = match severity {
                    Severity::Minor => self.rates.minor_rate,
                    Severity::Yellow => self.rates.yellow_rate,
                    Severity::Red => self.rates.red_rate,
                };
                for _ in 0..poisson(&mut self.rng, rate * multiplier * share) {
                    let t = self.uniform(from, to);
                    self.risk(risk, t);
                }
            }
            from = to;
        }
    }

    fn risk(&mut self, risk: Risk, t: Ts) {
        match risk {
            Risk::Penalty(class) => self.penalty(class, t),
            Risk::Listing(list) => self.listing(list, t),
            Risk::TaxArrears => self.tax_arrears(t),
            Risk::AbnormalHousehold => self.flag_pair(
                t,
                P::Tax(TaxKind::AbnormalHousehold),
                P::Tax(TaxKind::AbnormalLifted),
                0.6,
                (30, 360),
            ),
            Risk::MajorTaxViolation => self.flag_pair(
                t,
                P::Tax(TaxKind::MajorViolation),
                P::Tax(TaxKind::MajorViolationRemoved),
                0.2,
                (360, 1080),
            ),
            Risk::Lawsuit => self.lawsuit(t),
            Risk::Freeze => {
                let jud = self.case(JudRole::Defendant);
                let amount = self.cny(10_000, 5_000_000);
                self.flag_pair(
                    t,
                    jud.rec(JudKind::Freeze, amount, None),
                    jud.rec(JudKind::Unfreeze, 0, None),
                    0.7,
                    (30, 360),
                );
            }
            Risk::Enforcement(sanction) => self.enforcement(sanction, t),
            Risk::Overdue { beyond_90_days } => self.overdue(beyond_90_days, t),
            Risk::FinList(listed) => {
                let removed = if listed == FinKind::PoliceListed {
                    FinKind::PoliceRemoved
                } else {
                    FinKind::DebtEvasionRemoved
                };
                let fin = |kind| P::Fin {
                    kind,
                    lender: 0,
                    days: 0,
                    amount: 0,
                };
                self.flag_pair(t, fin(listed), fin(removed), 0.3, (180, 720));
            }
            Risk::SuspiciousAccount => {
                let fin = |kind| P::Fin {
                    kind,
                    lender: 0,
                    days: 0,
                    amount: 0,
                };
                self.flag_pair(
                    t,
                    fin(FinKind::SuspiciousAccount),
                    fin(FinKind::SuspiciousAccountCleared),
                    0.8,
                    (30, 180),
                );
            }
            Risk::RepDishonest => {
                let person = self.person(t);
                let per = |kind| P::Per {
                    kind,
                    person,
                    role: None,
                };
                self.flag_pair(
                    t,
                    per(PerKind::DishonestListed),
                    per(PerKind::DishonestRemoved),
                    0.5,
                    (90, 540),
                );
            }
        }
    }

    /// A record and, with probability `p`, its retraction `days` later (ref_event_id).
    fn flag_pair(&mut self, t: Ts, on: P, off: P, p: f64, days: (i64, i64)) {
        if let Some(h) = self.head(t, on).filter(|_| self.chance(p)) {
            let r = t + self.uniform(days.0 * DAY, days.1 * DAY);
            self.follow(h, r, Some(h), off);
        }
    }

    /// A new court case of the enterprise in the given role.
    fn case(&mut self, role: JudRole) -> Case {
        Case {
            court: self.rng.random_range(1..8),
            role,
            cause: JudCause::ALL[self.rng.random_range(0..JudCause::ALL.len())],
            close: CloseReason::ALL[pick(&mut self.rng, &[0.15, 0.1, 0.45, 0.3])],
        }
    }

    /// Settles a fine or an enforced sum: on time (before `due`), late, or never.
    fn payment_time(&mut self, t: Ts, due: Ts) -> Option<Ts> {
        match pick(
            &mut self.rng,
            &[
                self.traits.payment[0],
                self.traits.payment[1],
                1.0 - self.traits.payment[0] - self.traits.payment[1],
            ],
        ) {
            0 => Some(self.uniform(t + HOUR, due)),
            1 => Some(self.uniform(due + DAY, due + 150 * DAY)),
            _ => None,
        }
    }

    fn penalty(&mut self, class: DishonestyClass, t: Ts) {
        let bit =
            |ty: PenaltyType| 1u8 << PenaltyType::ALL.iter().position(|x| *x == ty).unwrap_or(0);
        let (types, fine, confiscation) = match class {
            DishonestyClass::Minor => {
                let fine = if self.chance(0.5) {
                    self.cny(500, 5_000)
                } else {
                    0
                };
                (
                    bit(PenaltyType::Warning) | if fine > 0 { bit(PenaltyType::Fine) } else { 0 },
                    fine,
                    0,
                )
            }
            DishonestyClass::General => {
                let confiscation = if self.chance(0.3) {
                    self.cny(1_000, 50_000)
                } else {
                    0
                };
                (
                    bit(PenaltyType::Fine)
                        | if confiscation > 0 {
                            bit(PenaltyType::Confiscation)
                        } else {
                            0
                        },
                    self.cny(2_000, 100_000),
                    confiscation,
                )
            }
            DishonestyClass::Serious => {
                let confiscation = if self.chance(0.5) {
                    self.cny(10_000, 1_000_000)
                } else {
                    0
                };
                let suspension = if self.chance(0.3) {
                    bit(PenaltyType::Suspension)
                } else {
                    0
                };
                (
                    bit(PenaltyType::Fine)
                        | suspension
                        | if confiscation > 0 {
                            bit(PenaltyType::Confiscation)
                        } else {
                            0
                        },
                    self.cny(50_000, 2_000_000),
                    confiscation,
                )
            }
        };
        let due_end = t + 15 * DAY;
        let body = P::PenDecided {
            class,
            types,
            domain: self.rng.random_range(0..DOMAINS.len()) as u8,
            fine,
            confiscation,
            due: local_date(due_end),
            publicity: class != DishonestyClass::Minor && self.chance(0.5),
        };
        let Some(h) = self.head(t, body) else { return };
        if fine + confiscation > 0 {
            if let Some(paid) = self.payment_time(t, due_end) {
                self.follow(h, paid, None, P::Pen(PenKind::Performed));
            }
        }
        if self.chance(0.03) {
            let r = t + self.uniform(10 * DAY, 180 * DAY);
            self.follow(h, r, Some(h), P::Pen(PenKind::Revoked));
        } else if class != DishonestyClass::Minor && self.chance(0.25) {
            let months = if class == DishonestyClass::Serious {
                (10, 30)
            } else {
                (2, 18)
            };
            let r = self.uniform(add_months(t, months.0), add_months(t, months.1));
            self.repair(Feed::Pen, h, r, RepairType::TerminatePublicity);
        }
    }

    /// RPR.COMPLETED of a target, rarely revoked.
    fn repair(&mut self, target_feed: Feed, target: Link, t: Ts, repair: RepairType) {
        let body = P::Repair {
            target_feed,
            target: target.seq,
            repair,
            effective: t + self.uniform(0, DAY),
        };
        if let Some(h) = self
            .push(t, target.ingest, None, None, body)
            .filter(|_| self.chance(0.05))
        {
            let r = t + self.uniform(10 * DAY, 90 * DAY);
            self.follow(h, r, Some(h), P::RepairRevoked);
        }
    }

    fn listing(&mut self, list: ListType, t: Ts) {
        let reason = self.rng.random_range(0..3);
        let Some(h) = self.head(
            t,
            P::List {
                kind: ListKind::Listed,
                list,
                reason,
            },
        ) else {
            return;
        };
        let (p, months) = match list {
            ListType::Abnormal => (0.75, (1, 10)),
            ListType::SeriousIllegal => (0.3, (12, 36)),
        };
        if self.chance(p) {
            let r = self.uniform(add_months(t, months.0), add_months(t, months.1));
            if self.chance(0.3) {
                self.repair(Feed::List, h, r, RepairType::ListRemoval);
            } else {
                self.follow(
                    h,
                    r,
                    Some(h),
                    P::List {
                        kind: ListKind::Removed,
                        list,
                        reason,
                    },
                );
            }
        }
    }

    fn tax_arrears(&mut self, t: Ts) {
        let amount = self.cny(5_000, 500_000);
        let late_fee = amount * self.rng.random_range(0..5) / 100;
        let Some(h) = self.head(
            t,
            P::TaxArrears {
                kind: TaxKind::ArrearsAssessed,
                amount,
                late_fee,
            },
        ) else {
            return;
        };
        if self.chance(0.8) {
            let paid_at = t + self.uniform(10 * DAY, 120 * DAY);
            let first = if self.chance(0.3) { amount / 2 } else { amount };
            let paid = P::TaxArrears {
                kind: TaxKind::ArrearsPaid,
                amount: first,
                late_fee: 0,
            };
            if self.follow(h, paid_at, Some(h), paid).is_some() && first < amount {
                let rest = P::TaxArrears {
                    kind: TaxKind::ArrearsPaid,
                    amount: amount - first,
                    late_fee: 0,
                };
                let t2 = paid_at + self.uniform(10 * DAY, 90 * DAY);
                self.follow(h, t2, Some(h), rest);
            }
        }
    }

    fn lawsuit(&mut self, t: Ts) {
        let role = JudRole::ALL[pick(&mut self.rng, &[0.7, 0.25, 0.05])];
        let jud = self.case(role);
        let amount = self.cny(10_000, 2_000_000);
        let Some(h) = self.head(t, jud.rec(JudKind::CaseFiled, amount, None)) else {
            return;
        };
        if self.chance(0.9) {
            let r = self.uniform(add_months(t, 1), add_months(t, 10));
            self.follow(h, r, Some(h), jud.rec(JudKind::CaseClosed, 0, None));
        }
    }

    /// ENFORCEMENT_FILED, escalated to termination, consumption restriction or the dishonest
    /// debtor list, and sometimes settled.
    fn enforcement(&mut self, sanction: Sanction, t: Ts) {
        let jud = self.case(JudRole::Defendant);
        let amount = self.cny(50_000, 5_000_000);
        let due = t + 10 * DAY;
        let Some(h) = self.head(
            t,
            jud.rec(JudKind::EnforcementFiled, amount, Some(local_date(due))),
        ) else {
            return;
        };
        let step = self.uniform(add_months(t, 1), add_months(t, 3));
        let mut lifts = Vec::new();
        match sanction {
            Sanction::Terminated => {
                let unpaid = amount * self.rng.random_range(50..=100) / 100;
                if self
                    .follow(
                        h,
                        step,
                        None,
                        jud.rec(JudKind::EnforcementTerminated, unpaid, None),
                    )
                    .is_none()
                {
                    return;
                }
            }
            Sanction::Restricted | Sanction::Dishonest => {
                let Some(r) = self.follow(
                    h,
                    step,
                    None,
                    jud.rec(JudKind::ConsumptionRestricted, 0, None),
                ) else {
                    return;
                };
                lifts.push((r, JudKind::ConsumptionLifted));
                if sanction == Sanction::Dishonest {
                    let until = local_date(add_years(step, 2));
                    let Some(d) = self.follow(
                        h,
                        step,
                        None,
                        jud.rec(JudKind::DishonestListed, 0, Some(until)),
                    ) else {
                        return;
                    };
                    lifts.push((d, JudKind::DishonestRemoved));
                }
            }
        }
        let settle = self.chance(if sanction == Sanction::Dishonest {
            0.3
        } else {
            0.5
        });
        if !settle {
            return;
        }
        let done = self.uniform(add_months(step, 2), add_months(step, 18));
        let kind = if self.chance(0.6) {
            JudKind::Performed
        } else {
            JudKind::EnforcementClosed
        };
        if self
            .follow(h, done, Some(h), jud.rec(kind, 0, None))
            .is_some()
        {
            for (target, lift) in lifts {
                let t = done + self.uniform(DAY, 10 * DAY);
                self.follow(h, t, Some(target), jud.rec(lift, 0, None));
            }
        }
    }

    /// OVERDUE_LISTED, monthly OVERDUE_UPDATED, OVERDUE_CLEARED.
    fn overdue(&mut self, beyond_90_days: bool, t: Ts) {
        let lender = self.rng.random_range(1..40);
        let mut amount = self.cny(50_000, 5_000_000);
        let mut days = self.rng.random_range(1..30);
        let fin = |kind, days, amount| P::Fin {
            kind,
            lender,
            days,
            amount,
        };
        let Some(h) = self.head(t, fin(FinKind::OverdueListed, days, amount)) else {
            return;
        };
        let (updates, clear) = if beyond_90_days {
            (self.rng.random_range(3..9), self.chance(0.4))
        } else {
            (self.rng.random_range(0..2), true)
        };
        let mut at = t;
        for _ in 0..updates {
            at += 30 * DAY;
            days += 30;
            amount = amount * self.rng.random_range(80..=100) / 100;
            if self
                .follow(h, at, None, fin(FinKind::OverdueUpdated, days, amount))
                .is_none()
            {
                return;
            }
        }
        if clear {
            let r = at + self.uniform(DAY, 25 * DAY);
            self.follow(h, r, Some(h), fin(FinKind::OverdueCleared, 0, 0));
        }
    }

    /// Corrections, late and duplicate deliveries, malformed copies of the records from
    /// `first` on.
    fn perturb(&mut self, first: usize) {
        let cfg = self.cfg;
        let originals = self.out.len();
        for i in first..originals {
            if !self.chance(cfg.correction_rate) {
                continue;
            }
            let mut rec = self.out[i].clone();
            let permille = self.rng.random_range(700..1300);
            rec.ingest += self.uniform(DAY, 60 * DAY);
            if rec.body.correct(permille) && rec.ingest < self.end {
                rec.version = 2;
                self.out.push(rec);
            }
        }
        let lateness = i64::from(cfg.lateness_secs);
        for i in first..self.out.len() {
            if self.chance(cfg.out_of_order_rate) {
                self.out[i].delay = self.uniform(1, lateness + 1) as u32;
            }
            if self.chance(cfg.duplicate_rate) {
                let mut dup = self.out[i].clone();
                dup.delivery = Delivery::Duplicate;
                dup.delay = self.uniform(dup.delay.into(), lateness + 1) as u32;
                self.out.push(dup);
            }
            if self.chance(cfg.malformed_rate) {
                let mut bad = self.out[i].clone();
                bad.delivery =
                    Delivery::Malformed(Malform::ALL[self.rng.random_range(0..Malform::ALL.len())]);
                self.out.push(bad);
            }
        }
    }
}
